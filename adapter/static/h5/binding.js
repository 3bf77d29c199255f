// /h5/binding: bind an account its wallet did not certify to the patient's own identity.
import { api, ApiError, failed, notice, t } from "./h5.js";

const $ = (id) => document.getElementById(id);
const hisForm = $("his-form");
const cardForm = $("card-form");
const codeForm = $("code-form");

function show(status) {
  $("bound").hidden = !status.certified;
  $("unbound").hidden = status.certified;
  if (status.certified) {
    $("bound-text").textContent = t(`bound_by_${status.bound_by}`);
    return;
  }
  const waiting = status.confirmation === "sms_code";
  codeForm.hidden = !waiting;
  if (waiting) $("code-sent").textContent = t("code_sent", { phone: status.phone });
}

function formError(form, text) {
  const box = form.querySelector(".form-error");
  box.textContent = text || "";
  box.hidden = !text;
}

async function send(form, path, body) {
  formError(form, "");
  const button = form.querySelector("button[type=submit]") || form.querySelector("button");
  if (button) button.disabled = true;
  try {
    const status = await api("POST", path, { body });
    show(status);
    if (status.certified) notice(t("binding_done"));
    else if (status.confirmation === "sms_code") $("bf-code").focus();
  } catch (error) {
    if (error instanceof ApiError && error.status !== 401) formError(form, error.message);
    else failed(error);
  } finally {
    if (button) button.disabled = false;
  }
}

function required(form, names) {
  for (const name of names) {
    const input = form.elements.namedItem(name);
    const empty = !input.value.trim();
    input.classList.toggle("invalid", empty);
    if (empty) {
      input.setAttribute("aria-invalid", "true");
      formError(form, t("field_required"));
      input.focus();
      return false;
    }
    input.removeAttribute("aria-invalid");
  }
  return true;
}

for (const radio of document.querySelectorAll("input[name=method]")) {
  radio.addEventListener("change", () => {
    if (hisForm) hisForm.hidden = radio.value !== "his_match";
    if (cardForm) cardForm.hidden = radio.value !== "health_card";
  });
}

hisForm?.addEventListener("submit", (event) => {
  event.preventDefault();
  if (!required(hisForm, ["name", "document_number", "phone"])) return;
  const field = (name) => hisForm.elements.namedItem(name).value.trim();
  send(hisForm, "/account/binding", {
    method: "his_match", name: field("name"), document_type: field("document_type"),
    document_number: field("document_number"), phone: field("phone"),
  });
});

cardForm?.addEventListener("submit", (event) => {
  event.preventDefault();
  if (!required(cardForm, ["card"])) return;
  send(cardForm, "/account/binding", {
    method: "health_card", card: cardForm.elements.namedItem("card").value.trim(),
  });
});

codeForm.addEventListener("submit", (event) => {
  event.preventDefault();
  if (!required(codeForm, ["sms_code"])) return;
  send(codeForm, "/account/binding/confirm", {
    sms_code: codeForm.elements.namedItem("sms_code").value.trim(),
  });
});

$("bf-resend").addEventListener("click", () => send(codeForm, "/account/binding/resend", {}));

async function start() {
  try {
    show(await api("GET", "/account/binding"));
  } catch (error) {
    failed(error);
  }
}

start();
