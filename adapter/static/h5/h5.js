// Shared by the patient pages: configuration and strings from the page, the API client,
// small DOM helpers, dates in the hospital's time zone, and paying through the wallet.
// Text is always set with textContent: nothing from the API is parsed as HTML.

export const config = JSON.parse(document.getElementById("h5-config").textContent);
const strings = JSON.parse(document.getElementById("h5-strings").textContent);

/** The page's translated string `key`, with {name} placeholders filled from `params`. */
export function t(key, params = {}) {
  const text = strings[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

/** A page under /h5/ (`path` without the leading slash), keeping ?lang= when the page had it. */
export function pageUrl(path = "", params = {}) {
  const query = new URLSearchParams(params);
  if (config.lang_param) query.set("lang", config.lang_param);
  const text = query.toString();
  return config.h5 + path + (text ? `?${text}` : "");
}

/** The same page as an absolute URL (what the wallet redirects back to). */
export function absolute(url) {
  return new URL(url, window.location.href).href;
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Call the JSON API; resolves to the body, rejects with an ApiError carrying its message. */
export async function api(method, path, { body, params = {}, headers = {} } = {}) {
  const query = new URLSearchParams(params);
  query.set("lang", config.lang); // refusals come back in the page's language
  const init = {
    method,
    credentials: "same-origin",
    headers: { Accept: "application/json", ...headers },
  };
  // Every write is JSON, bodyless ones too: the API refuses other writes (its CSRF defence).
  if (body !== undefined || method !== "GET") {
    init.headers["Content-Type"] = "application/json";
    if (body !== undefined) init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(`${config.api}${path}?${query}`, init);
  } catch {
    throw new ApiError(0, "network", t("error_network"));
  }
  let data = null;
  if ((response.headers.get("Content-Type") || "").includes("json")) {
    data = await response.json().catch(() => null);
  }
  if (!response.ok) {
    throw new ApiError(response.status, data?.error || `http.${response.status}`,
      data?.message || t("error_generic"));
  }
  return data;
}

/** Show a message at the top of the page (errors in red); empty text hides it. */
export function notice(text, kind = "info") {
  const box = document.getElementById("notice");
  box.textContent = text || "";
  box.classList.toggle("error", kind === "error");
  box.hidden = !text;
  if (text && kind === "error") box.scrollIntoView({ block: "nearest" });
}

/** Errors of a page's own loading: sign in again on 401, otherwise say what went wrong. */
export function failed(error) {
  if (error instanceof ApiError && error.status === 401) {
    window.location.replace(pageUrl());
    return;
  }
  notice(error instanceof ApiError ? error.message : t("error_generic"), "error");
  if (!(error instanceof ApiError)) console.warn(error); // a bug of ours, not the patient's
}

/** Build an element: el("li", {class: "x", onclick: f}, "text", child...). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** A random UUID (crypto.randomUUID needs a secure context; the wallet's pages may not be). */
export function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export const fee = (amount) => t("fee", { amount });

// Slot times come as ISO text in the hospital's zone (+08:00): read the wall clock off them.
export const hhmm = (iso) => (iso || "").slice(11, 16);
export const ymdOf = (iso) => (iso || "").slice(0, 10);

/** "05-20 周一" (or "Today") for a YYYY-MM-DD date. */
export function dayLabel(ymd) {
  if (ymd === hospitalNow().date) return `${ymd.slice(5)} ${t("today")}`;
  const [y, m, d] = ymd.split("-").map(Number);
  return `${ymd.slice(5)} ${t(`weekday_${new Date(Date.UTC(y, m - 1, d)).getUTCDay()}`)}`;
}

export function timeRange(start, end) {
  return `${dayLabel(ymdOf(start))} ${hhmm(start)}–${hhmm(end)}`;
}

/** Today's date and the time of day in the hospital's time zone. */
export function hospitalNow() {
  const parts = Object.fromEntries(new Intl.DateTimeFormat("en-CA", {
    timeZone: config.timezone, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  }).formatToParts(new Date()).map((p) => [p.type, p.value]));
  return { date: `${parts.year}-${parts.month}-${parts.day}`, time: `${parts.hour}:${parts.minute}` };
}

export function addDays(ymd, days) {
  const [y, m, d] = ymd.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, d + days)).toISOString().slice(0, 10);
}

export const relationText = (relation) => t(`relation_${relation}`);

/** The wallet's cashier: the sandbox's page in development; inside the wallet AlipayJSBridge
 * tradePay, or WeChat's getBrandWCPayRequest for a payment whose `pay` carries a prepay_id
 * package. Either way the patient comes back to `returnUrl`. */
export function pay(payment, returnUrl) {
  if (payment.cashier_url) {
    window.location.assign(payment.cashier_url);
    return;
  }
  if (payment.pay && payment.pay.package) {
    const brandPay = () => window.WeixinJSBridge.invoke("getBrandWCPayRequest", payment.pay,
      (result) => {
        // ok: paid (the callback confirms it); cancel or fail: not paid. The page polls either way.
        if (result?.err_msg !== "get_brand_wcpay_request:ok") notice(t("pay_cancelled"));
        window.location.assign(returnUrl);
      });
    if (window.WeixinJSBridge) brandPay();
    else document.addEventListener("WeixinJSBridgeReady", brandPay, { once: true });
    return;
  }
  const tradePay = () => window.AlipayJSBridge.call("tradePay", { tradeNO: payment.trade_no },
    (result) => {
      // 9000: paid; 8000/6004: result unknown yet. The booking page polls the adapter either way.
      if (!["9000", "8000", "6004"].includes(String(result?.resultCode))) notice(t("pay_cancelled"));
      window.location.assign(returnUrl);
    });
  if (window.AlipayJSBridge) tradePay();
  else document.addEventListener("AlipayJSBridgeReady", tradePay, { once: true });
}

/** POST /payments for a booking and go to the cashier. */
export async function startPayment(bookingId) {
  const returnUrl = absolute(pageUrl(`bookings/${encodeURIComponent(bookingId)}`));
  const payment = await api("POST", "/payments", {
    body: { booking_id: bookingId, return_url: returnUrl },
  });
  pay(payment, returnUrl);
}
