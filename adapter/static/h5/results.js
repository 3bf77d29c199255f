// /h5/results: the released results of the signed-in user and their dependants, newest first.
import { api, el, failed, pageUrl, t } from "./h5.js";

/** "2030-03-07 09:30" from an ISO time in the hospital's zone. */
export const when = (iso) => (iso ? `${iso.slice(0, 10)} ${iso.slice(11, 16)}` : "");

async function load() {
  const { results } = await api("GET", "/results");
  const list = document.getElementById("results");
  if (!results.length) {
    list.replaceChildren(el("li", {}, el("p", { class: "item sub" }, t("no_results"))));
    return;
  }
  list.replaceChildren(...results.map((r) => el("li", {},
    el("a", { class: "item", href: pageUrl(`results/${r.id}`), dataset: { id: r.id } },
      el("span", { class: "main" },
        el("span", { class: "title" }, r.title),
        el("span", { class: "sub" }, `${r.patient.name} · ${when(r.observed_at || r.released_at)}`)),
      el("span", { class: "side" },
        r.critical ? el("span", { class: "badge critical" }, t("result_critical"))
          : r.abnormal ? el("span", { class: "badge abnormal" }, t("result_abnormal", { n: r.abnormal }))
            : el("span", { class: "badge normal" }, t("result_normal")),
        r.corrected ? [el("br"), el("span", { class: "sub" }, t("result_corrected"))] : null)))));
}

if (document.body.dataset.page === "results") load().catch(failed);
