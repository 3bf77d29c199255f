// /h5/check-in?token=...: where the hospital's check-in QR code leads. Today's confirmed
// bookings, and one whose check-in has opened though it starts after midnight (the window
// opens config.opens_ms before the slot), each to its queue page with the code's token;
// straight there when there is one.
import { api, config, el, failed, hospitalNow, pageUrl, t, timeRange } from "./h5.js";

async function load() {
  const { bookings } = await api("GET", "/bookings");
  const today = hospitalNow().date;
  const opened = (b) => {
    const start = Date.parse(b.start_at);
    return start > Date.now() && start - Date.now() <= config.opens_ms;
  };
  const due = bookings.filter((b) => b.status === "confirmed"
    && (b.visit_date === today || opened(b)));
  const link = (b) => pageUrl(`bookings/${encodeURIComponent(b.id)}/queue`,
    config.token ? { token: config.token } : {});
  if (due.length === 1) {
    window.location.replace(link(due[0]));
    return;
  }
  const list = document.getElementById("today");
  if (!due.length) {
    list.replaceChildren(el("li", {}, el("p", { class: "item sub" }, t("check_in_none"))));
    return;
  }
  list.replaceChildren(...due.map((b) => el("li", {},
    el("a", { class: "item", href: link(b) },
      el("span", { class: "main" },
        el("span", { class: "title" }, `${b.department.name} · ${b.doctor.name}`),
        el("span", { class: "sub" }, timeRange(b.start_at, b.end_at)),
        el("span", { class: "sub" }, b.patient.name))))));
}

load().catch(failed);
