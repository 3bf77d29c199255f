// /h5/bookings/<id>: the booking as its state moves. Polls while the state can still change
// by itself (waiting for payment, waiting for the hospital, refund under way), and stops on a
// settled state.
import { api, ApiError, config, el, failed, fee, notice, startPayment, t, timeRange } from "./h5.js";
import { statusText } from "./bookings.js";

const POLL_MS = 2000;
const id = config.booking_id;
const $ = (elementId) => document.getElementById(elementId);
let pollTimer = null;
let current = null;

const moving = (b) => ["pending_payment", "confirming", "cancelling"].includes(b.status)
  || b.refund?.status === "pending";

function countdown() {
  const box = $("countdown");
  if (!current || current.status !== "pending_payment" || !current.hold_expires_at) {
    box.hidden = true;
    return;
  }
  const left = Math.max(0, Math.floor((Date.parse(current.hold_expires_at) - Date.now()) / 1000));
  box.hidden = false;
  box.textContent = left > 0
    ? `${t("hold_left")} ${t("minutes_seconds", { m: Math.floor(left / 60), s: String(left % 60).padStart(2, "0") })}`
    : t("hold_over");
  if (left === 0) $("pay").hidden = true;
}

function render(booking) {
  current = booking;
  const card = $("status-card");
  card.className = `card status ${booking.status}`;
  card.dataset.status = booking.status;
  $("status-text").textContent = statusText(booking);
  const hint = `hint_${booking.status}`;
  $("status-hint").textContent = t(hint) !== hint ? t(hint) : "";
  const refund = $("refund");
  refund.hidden = !booking.refund;
  if (booking.refund) {
    refund.dataset.status = booking.refund.status;
    refund.textContent = `${t(booking.refund.status === "done" ? "refund_done" : "refund_pending")} ${fee(booking.refund.amount)}`;
  }
  card.hidden = false;

  $("d-patient").textContent = booking.patient.name;
  $("d-department").textContent = booking.department.name;
  $("d-doctor").replaceChildren(booking.doctor.name, " ",
    el("span", { class: "sub" }, booking.doctor.title || ""));
  $("d-time").textContent = timeRange(booking.start_at, booking.end_at);
  $("d-fee").textContent = fee(booking.fee);
  $("d-id").textContent = booking.id;
  $("details").hidden = false;

  $("pay").hidden = !booking.can_pay;
  $("queue-link").hidden = booking.status !== "confirmed";
  $("cancel").hidden = !booking.can_cancel;
  countdown();
}

async function refresh() {
  clearTimeout(pollTimer);
  try {
    const booking = await api("GET", `/bookings/${encodeURIComponent(id)}`);
    render(booking);
    notice("");
    if (moving(booking)) pollTimer = setTimeout(refresh, POLL_MS);
  } catch (error) {
    failed(error);
    // A network blip must not stop the page following a payment: try again a little later.
    if (!(error instanceof ApiError) || error.status >= 500) pollTimer = setTimeout(refresh, POLL_MS * 2);
  }
}

$("pay").addEventListener("click", async () => {
  const button = $("pay");
  button.disabled = true;
  notice(t("paying"));
  try {
    await startPayment(id);
  } catch (error) {
    failed(error);
    button.disabled = false;
  }
});

const dialog = $("cancel-dialog");
$("cancel").addEventListener("click", () => dialog.showModal());
dialog.addEventListener("close", async () => {
  if (dialog.returnValue !== "cancel") return;
  dialog.returnValue = "";
  const button = $("cancel");
  button.disabled = true;
  notice(t("cancelling"));
  try {
    render(await api("POST", `/bookings/${encodeURIComponent(id)}/cancel`));
    notice("");
    if (moving(current)) pollTimer = setTimeout(refresh, POLL_MS);
  } catch (error) {
    failed(error);
  } finally {
    button.disabled = false;
  }
});

// Back from the cashier the page may come out of the back/forward cache: look again.
window.addEventListener("pageshow", (event) => { if (event.persisted) refresh(); });
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && current && moving(current)) refresh();
});
setInterval(countdown, 1000);
refresh();
