// /h5/bookings/<id>/queue: the visit day, live. Check in (the phone's location, or the QR
// code's token when the page was opened from it), then the place in the doctor's queue, asked
// again every few seconds so the figures move without a reload.
import { api, ApiError, config, failed, hhmm, notice, t } from "./h5.js";

const id = encodeURIComponent(config.booking_id);
const $ = (elementId) => document.getElementById(elementId);
let timer = null;

function render(view) {
  const card = $("queue-card");
  card.dataset.state = view.state;
  $("q-state").textContent = view.state === "called" && view.room
    ? t("queue_your_turn", { room: view.room }) : view.state_text;
  $("q-ahead").textContent = view.ahead ?? "–";
  $("q-position").textContent = view.position ?? "–";
  $("q-wait").textContent = view.wait
    ? t("queue_wait", { low: view.wait.low_minutes, high: view.wait.high_minutes }) : "\u00a0";
  $("q-room").textContent = view.room ? t("queue_room", { room: view.room }) : "\u00a0";
  $("q-updated").textContent = view.updated_at
    ? t("queue_updated", { time: hhmm(view.updated_at) }) : "\u00a0";
  $("check-in").hidden = view.checked_in || !["not_in_queue", "registered"].includes(view.state);
}

async function refresh() {
  clearTimeout(timer);
  try {
    render(await api("GET", `/bookings/${id}/queue`));
  } catch (error) {
    failed(error);
    if (error instanceof ApiError && error.status === 404) return; // not this patient's
  }
  timer = setTimeout(refresh, config.poll_ms);
}

function position() {
  return new Promise((resolve, reject) => {
    if (!navigator.geolocation) { reject(new Error("no geolocation")); return; }
    navigator.geolocation.getCurrentPosition(
      (where) => resolve({ latitude: where.coords.latitude, longitude: where.coords.longitude,
        accuracy_m: Math.min(where.coords.accuracy || 0, 100000) }),
      reject, { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
  });
}

async function checkIn() {
  const button = $("check-in");
  button.disabled = true;
  try {
    let body;
    if (config.token) body = { token: config.token };
    else {
      notice(t("queue_locating"));
      try {
        body = { location: await position() };
      } catch {
        notice(t("queue_no_location"), "error");
        return;
      }
    }
    notice(t("queue_checking_in"));
    await api("POST", `/bookings/${id}/check-in`, { body });
    notice(t("queue_checked_in"));
    await refresh();
  } catch (error) {
    failed(error);
  } finally {
    button.disabled = false;
  }
}

$("check-in").addEventListener("click", checkIn);
refresh();
