// /h5/bills: the unpaid charges of the signed-in user and their verified dependants, one card
// per group (the charges the hospital lets be paid together), each paid in one trade.
import { absolute, api, el, failed, fee, pageUrl, pay, t } from "./h5.js";

function groups(charges) {
  const byGroup = new Map();
  charges.forEach((c) => {
    const key = c.group_code || `#${c.id}`; // no group: paid alone
    if (!byGroup.has(key)) byGroup.set(key, []);
    byGroup.get(key).push(c);
  });
  return [...byGroup.values()];
}

const totalOf = (charges) => (charges.reduce((sum, c) => sum + c.amount_fen, 0) / 100).toFixed(2);

async function payGroup(button, charges) {
  button.disabled = true;
  button.textContent = t("paying");
  try {
    // The amount is the hospital's: the page sends only which charges. The bill's page is
    // known once the hospital has locked them; asking again for the same charges returns the
    // same lock and trade, now with the cashier coming back to that page.
    const chargeIds = charges.map((c) => c.id);
    const { bill_id: billId } = await api("POST", "/payments", { body: { charge_ids: chargeIds } });
    const returnUrl = absolute(pageUrl(`bills/${encodeURIComponent(billId)}`));
    const payment = await api("POST", "/payments",
      { body: { charge_ids: chargeIds, return_url: returnUrl } });
    pay(payment, returnUrl);
  } catch (error) {
    button.disabled = false;
    button.textContent = t("bill_pay");
    failed(error);
  }
}

function card(charges) {
  const button = el("button", { type: "button", class: "primary" }, t("bill_pay"));
  button.addEventListener("click", () => payGroup(button, charges));
  return el("section", { class: "card bill", "data-group": charges[0].group_code },
    el("ul", { class: "list" }, ...charges.map((c) => el("li", { class: "item" },
      el("span", { class: "main" },
        el("span", { class: "title" }, c.item_name),
        el("span", { class: "sub" }, `${c.department.name} · ${t("quantity", { n: c.quantity })}`)),
      el("span", { class: "side" }, fee(c.amount))))),
    el("p", { class: "total" }, `${t("bill_total")} ${fee(totalOf(charges))}`), button);
}

async function load() {
  const { patients } = await api("GET", "/bills");
  const box = document.getElementById("bills");
  const withCharges = patients.filter((p) => p.charges.length);
  if (!withCharges.length) {
    box.replaceChildren(el("p", { class: "item sub" }, t("no_bills")));
    return;
  }
  box.replaceChildren(...withCharges.flatMap((p) => [
    el("h2", {}, p.patient.name), ...groups(p.charges).map(card)]));
}

if (document.body.dataset.page === "bills") load().catch(failed);
