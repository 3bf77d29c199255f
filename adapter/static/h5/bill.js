// /h5/bills/<id>: a bill as it is paid and posted; once posted, the hospital's receipt and
// where to go next. Polls while the state can still change by itself.
import { api, ApiError, config, el, failed, fee, t } from "./h5.js";

const POLL_MS = 2000;
const $ = (elementId) => document.getElementById(elementId);
const moving = (b) => ["pending_payment", "committing"].includes(b.status);

function render(bill) {
  const card = $("status-card");
  card.className = `card status ${bill.status}`;
  card.dataset.status = bill.status;
  $("status-text").textContent = bill.status_text;
  const refunded = bill.refunded !== "0.00";
  $("refund").hidden = !refunded;
  if (refunded) $("refund").textContent = `${t("refund_done")} ${fee(bill.refunded)}`;
  card.hidden = false;

  $("receipt").hidden = !bill.receipt;
  if (bill.receipt) {
    $("r-receipt").textContent = bill.receipt.receipt_no;
    $("r-invoice").textContent = bill.receipt.invoice_no || "-";
    $("r-check").textContent = bill.receipt.check_code || "-";
    const link = $("r-link");
    link.hidden = !bill.receipt.invoice_url;
    if (bill.receipt.invoice_url.startsWith("https://")) link.href = bill.receipt.invoice_url;
  }
  $("next").hidden = !bill.next_stops.length;
  $("next-stops").replaceChildren(...bill.next_stops.map((s) => el("li", { class: "item" },
    el("span", { class: "main" }, el("span", { class: "title" }, s.place),
      el("span", { class: "sub" }, s.location)))));

  $("d-patient").textContent = bill.patient.name;
  $("d-total").textContent = fee(bill.total);
  $("d-self-pay").textContent = fee(bill.split.self_pay);
  $("d-fund").textContent = fee(bill.split.insurance_fund);
  $("d-account").textContent = fee(bill.split.personal_account);
  $("lines").replaceChildren(...bill.lines.map((l) => el("li", { class: "item" },
    el("span", { class: "main" }, el("span", { class: "title" }, l.item_name)),
    el("span", { class: "side" }, fee(l.amount)))));
  $("details").hidden = false;
}

async function refresh() {
  try {
    const bill = await api("GET", `/bills/${encodeURIComponent(config.bill_id)}`);
    render(bill);
    if (moving(bill)) setTimeout(refresh, POLL_MS);
  } catch (error) {
    if (!(error instanceof ApiError) || error.status >= 500) setTimeout(refresh, POLL_MS * 2);
    failed(error);
  }
}

if (document.body.dataset.page === "bill") refresh();
