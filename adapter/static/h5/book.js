// /h5/book: department -> doctor (or any) -> date -> slot -> patient -> confirm -> pay.
// Each step is a history entry, so the phone's back gesture goes back one step.
import {
  addDays, api, ApiError, dayLabel, el, failed, fee, hhmm, hospitalNow, notice, pageUrl,
  startPayment, t, timeRange, uuid,
} from "./h5.js";
import { documentTypeNames, patientLines, setupPatientForm } from "./patient-form.js";

const STEPS = ["department", "doctor", "date", "slot", "patient", "confirm"];
const INTENT_KEY = "h5.booking-intent";
const NEEDS = {
  department: [], doctor: ["department"], date: ["department"], slot: ["department", "date"],
  patient: ["slot"], confirm: ["slot", "patient"],
};
const EXTRA_DAYS = 2; // dates shown beyond the release window, marked with their release time
const $ = (id) => document.getElementById(id);

const chosen = { department: null, doctor: null, date: null, slot: null, patient: null };
let departments = [];
const typeNames = documentTypeNames($("patient-form"));

function show(step) {
  for (const name of STEPS) $(`step-${name}`).hidden = name !== step;
  const index = STEPS.indexOf(step);
  document.querySelectorAll(".steps li").forEach((li, i) => {
    li.classList.toggle("done", i < index);
    if (i === index) li.setAttribute("aria-current", "step");
    else li.removeAttribute("aria-current");
  });
  notice("");
  window.scrollTo(0, 0);
}

async function go(step, { replace = false } = {}) {
  try {
    await RENDER[step]();
  } catch (error) {
    failed(error);
    return;
  }
  show(step);
  const state = { step };
  if (replace) window.history.replaceState(state, "");
  else window.history.pushState(state, "");
}

window.addEventListener("popstate", (event) => {
  let step = event.state?.step || "department";
  // After a reload the choices are gone: start again.
  if (!NEEDS[step].every((name) => chosen[name])) step = "department";
  RENDER[step]().then(() => show(step), failed);
});

function choice(label, { sub = "", side = "", disabled = false, onclick, data = {} }) {
  return el("li", {},
    el("button", { type: "button", disabled, onclick, dataset: data },
      el("span", { class: "main" }, el("span", { class: "title" }, label),
        sub ? el("span", { class: "sub" }, sub) : null),
      side ? el("span", { class: "side" }, side) : null));
}

const RENDER = {
  async department() {
    if (!departments.length) departments = (await api("GET", "/departments")).departments;
    $("departments").replaceChildren(...(departments.length ? departments.map((d) => choice(d.name, {
      data: { code: d.code },
      onclick: () => { chosen.department = d; chosen.doctor = null; go("doctor"); },
    })) : [el("li", {}, el("p", { class: "item sub" }, t("no_departments")))]));
  },

  async doctor() {
    const d = chosen.department;
    $("doctors").replaceChildren(
      choice(t("any_doctor"), {
        sub: t("any_doctor_hint"), data: { code: "" },
        onclick: () => { chosen.doctor = null; go("date"); },
      }),
      ...d.doctors.map((doctor) => choice(doctor.name, {
        sub: doctor.title, data: { code: doctor.code },
        onclick: () => { chosen.doctor = doctor; go("date"); },
      })));
  },

  async date() {
    const d = chosen.department;
    const now = hospitalNow();
    $("release-note").textContent = t("releases_at", { time: d.release_time });
    const days = [];
    for (let i = 0; i <= d.release_days_ahead + EXTRA_DAYS; i += 1) {
      const date = addDays(now.date, i);
      // A date opens release_days_ahead days before it, at release_time (hospital time).
      const opens = addDays(date, -d.release_days_ahead);
      const released = opens < now.date || (opens === now.date && now.time >= d.release_time);
      days.push(el("li", {}, el("button", {
        type: "button", disabled: !released, dataset: { date },
        "aria-label": released ? dayLabel(date)
          : `${dayLabel(date)} ${t("not_released_date", { date: opens.slice(5), time: d.release_time })}`,
        onclick: () => { chosen.date = date; go("slot"); },
      }, dayLabel(date), released ? null
        : el("small", {}, t("not_released_date", { date: opens.slice(5), time: d.release_time })))));
    }
    $("dates").replaceChildren(...days);
  },

  async slot() {
    const params = { date: chosen.date };
    if (chosen.doctor) params.doctor = chosen.doctor.code;
    else params.department = chosen.department.code;
    const { slots } = await api("GET", "/slots", { params });
    $("slot-context").textContent = `${chosen.department.name} · ${
      chosen.doctor ? chosen.doctor.name : t("any_doctor")} · ${dayLabel(chosen.date)}`;
    const items = slots.map((slot) => {
      const open = slot.status === "open" && slot.remaining > 0;
      let state = t("remaining", { n: slot.remaining });
      if (slot.status === "full" || (slot.status === "open" && slot.remaining <= 0)) state = t("slot_full");
      else if (slot.status === "closed") state = t("slot_closed");
      else if (slot.status === "not_released") {
        state = slot.release_at
          ? t("not_released_date", { date: slot.release_at.slice(5, 10), time: hhmm(slot.release_at) })
          : t("slot_not_released");
      }
      return choice(`${hhmm(slot.start_at)}–${hhmm(slot.end_at)}`, {
        sub: `${slot.doctor_name} ${slot.doctor_title || ""}`.trim(),
        side: el("span", {}, el("span", { class: "fee" }, fee(slot.fee)), el("br"), state),
        disabled: !open, data: { slotId: slot.id, status: slot.status },
        onclick: () => { chosen.slot = slot; go("patient"); },
      });
    });
    $("slots").replaceChildren(...(items.length ? items
      : [el("li", {}, el("p", { class: "item sub" }, t("no_slots")))]));
  },

  async patient() {
    const { patients } = await api("GET", "/patients");
    $("patients").replaceChildren(...patients.map((p) => el("li", {},
      el("button", {
        type: "button", dataset: { patientId: p.id },
        "aria-pressed": chosen.patient?.id === p.id ? "true" : "false",
        onclick: () => { chosen.patient = p; go("confirm"); },
      }, el("span", { class: "main" }, ...patientLines(p, typeNames))))));
    const none = !patients.length;
    $("patient-form-box").hidden = !none;
    $("show-patient-form").hidden = none;
    if (none) notice(t("add_patient_first"));
  },

  async confirm() {
    const { slot, patient } = chosen;
    $("c-patient").textContent = patient.name;
    $("c-department").textContent = chosen.department.name;
    $("c-doctor").textContent = `${slot.doctor_name} ${slot.doctor_title || ""}`.trim();
    $("c-time").textContent = timeRange(slot.start_at, slot.end_at);
    $("c-fee").textContent = fee(slot.fee);
    $("confirm-error").hidden = true;
  },
};

/** One Idempotency-Key per intent (this slot for this patient), kept across retries and
 * reloads so a double tap or a retry after a lost answer books once. */
function intentKey(slotId, patientId) {
  let intent = null;
  try {
    intent = JSON.parse(sessionStorage.getItem(INTENT_KEY) || "null");
  } catch {
    intent = null;
  }
  if (!intent || intent.slot_id !== slotId || intent.patient_id !== patientId) {
    intent = { slot_id: slotId, patient_id: patientId, key: uuid() };
    sessionStorage.setItem(INTENT_KEY, JSON.stringify(intent));
  }
  return intent.key;
}

const submit = $("submit-booking");
submit.addEventListener("click", async () => {
  if (submit.disabled) return;
  submit.disabled = true;
  const errorBox = $("confirm-error");
  errorBox.hidden = true;
  notice(t("booking"));
  const slotId = chosen.slot.id;
  const patientId = chosen.patient.id;
  let booking;
  try {
    booking = await api("POST", "/bookings", {
      body: { slot_id: slotId, patient_id: patientId },
      headers: { "Idempotency-Key": intentKey(slotId, patientId) },
    });
  } catch (error) {
    notice("");
    if (error instanceof ApiError && error.status === 401) return failed(error);
    errorBox.textContent = error.message || t("error_generic");
    errorBox.hidden = false;
    // A refusal or a full slot is final for this intent; a lost answer keeps the key to retry.
    if (error instanceof ApiError && error.status >= 400 && error.status < 500) {
      sessionStorage.removeItem(INTENT_KEY);
    }
    submit.disabled = false;
    return;
  }
  sessionStorage.removeItem(INTENT_KEY);
  notice(t("paying"));
  try {
    await startPayment(booking.id);
  } catch {
    // The booking is held: its page shows the deadline and a Pay button.
    window.location.assign(pageUrl(`bookings/${encodeURIComponent(booking.id)}`));
  }
});

$("show-patient-form").addEventListener("click", () => {
  $("patient-form-box").hidden = false;
  $("show-patient-form").hidden = true;
  $("pf-name").focus();
});

setupPatientForm($("patient-form"), async (patient) => {
  chosen.patient = patient;
  $("patient-form-box").hidden = true;
  await go("confirm");
});

go("department", { replace: true });
