// The "add patient" form, on the patients page and inline in the booking flow.
import { api, ApiError, el, failed, relationText, t } from "./h5.js";

/** Document type names as the page rendered them (from the hospital's mappings). */
export function documentTypeNames(form) {
  const select = form.querySelector("#pf-document-type");
  return Object.fromEntries([...select.options].map((o) => [o.value, o.textContent]));
}

/** One patient as a line: name, relation, masked document; never the full number. */
export function patientLines(patient, typeNames) {
  const documentText = `${typeNames[patient.document_type] || patient.document_type} ${patient.document_number || ""}`;
  return [
    el("span", { class: "title" }, patient.name, " ",
      el("span", { class: "badge" }, relationText(patient.relation))),
    el("span", { class: "sub" }, documentText.trim()),
  ];
}

/** Wire the form; `onAdded(patient)` runs after the API accepted a new patient. */
export function setupPatientForm(form, onAdded) {
  const field = (name) => form.elements.namedItem(name);
  const error = form.querySelector("#patient-form-error");
  const consentRow = form.querySelector("#pf-consent-row");
  const birthRow = form.querySelector("#pf-birth-row");
  const submit = form.querySelector("#pf-submit");

  const showError = (text) => {
    error.textContent = text || "";
    error.hidden = !text;
  };
  const sync = () => {
    // Only a child needs the guardian's consent; a resident ID already carries the birth date.
    const child = field("relation").value === "child";
    consentRow.hidden = !child;
    field("guardian_consent").required = child;
    birthRow.hidden = field("document_type").value === "RESIDENT_ID";
  };
  field("relation").addEventListener("change", sync);
  field("document_type").addEventListener("change", sync);
  sync();

  const markInvalid = (input, invalid) => {
    input.classList.toggle("invalid", invalid);
    if (invalid) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError("");
    let firstProblem = null;
    for (const name of ["name", "document_number"]) {
      const input = field(name);
      const empty = !input.value.trim();
      markInvalid(input, empty);
      if (empty && !firstProblem) firstProblem = [input, t("field_required")];
    }
    const consent = field("guardian_consent");
    const missingConsent = consent.required && !consent.checked;
    markInvalid(consent, missingConsent);
    if (missingConsent && !firstProblem) firstProblem = [consent, t("consent_required")];
    if (firstProblem) {
      showError(firstProblem[1]);
      firstProblem[0].focus();
      return;
    }
    const body = {
      name: field("name").value.trim(),
      relation: field("relation").value,
      document_type: field("document_type").value,
      document_number: field("document_number").value.replace(/\s+/g, "").toUpperCase(),
      guardian_consent: field("relation").value === "child" && consent.checked,
    };
    if (!birthRow.hidden && field("birth_date").value) body.birth_date = field("birth_date").value;
    const phone = field("phone").value.replace(/\s+/g, "");
    if (phone) body.phone = phone;
    submit.disabled = true;
    try {
      const patient = await api("POST", "/patients", { body });
      form.reset();
      sync();
      await onAdded(patient);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return failed(err);
      showError(err instanceof ApiError ? err.message : t("error_generic"));
    } finally {
      submit.disabled = false;
    }
  });
}
