// /h5/patients: the signed-in user's patients and the form to add one.
import { api, el, failed, notice, t } from "./h5.js";
import { documentTypeNames, patientLines, setupPatientForm } from "./patient-form.js";

const form = document.getElementById("patient-form");
const list = document.getElementById("patients");
const typeNames = documentTypeNames(form);

async function load() {
  const { patients } = await api("GET", "/patients");
  list.replaceChildren(...patients.map((patient) => el("li", { dataset: { patientId: patient.id } },
    el("div", { class: "item" },
      el("span", { class: "main" }, ...patientLines(patient, typeNames)),
      patient.phone ? el("span", { class: "side" }, patient.phone) : null))));
}

setupPatientForm(form, async () => {
  notice(t("patient_added"));
  await load();
});
load().catch(failed);
