// /h5/bookings: the signed-in user's bookings, newest first as the API gives them.
import { api, el, failed, fee, pageUrl, t, timeRange } from "./h5.js";

export function statusText(booking) {
  const key = `status_${booking.status}`;
  return t(key) !== key ? t(key) : booking.status_text;
}

async function load() {
  const { bookings } = await api("GET", "/bookings");
  const list = document.getElementById("bookings");
  if (!bookings.length) {
    list.replaceChildren(el("li", {}, el("p", { class: "item sub" }, t("no_bookings"))));
    return;
  }
  list.replaceChildren(...bookings.map((b) => el("li", {},
    el("a", { class: "item", href: pageUrl(`bookings/${encodeURIComponent(b.id)}`) },
      el("span", { class: "main" },
        el("span", { class: "title" }, `${b.department.name} · ${b.doctor.name}`),
        el("span", { class: "sub" }, timeRange(b.start_at, b.end_at)),
        el("span", { class: "sub" }, b.patient.name)),
      el("span", { class: "side" },
        el("span", { class: `badge ${b.status}` }, statusText(b)), el("br"),
        b.refund ? t(b.refund.status === "done" ? "refund_done" : "refund_pending") : fee(b.fee))))));
}

if (document.body.dataset.page === "bookings") load().catch(failed);
