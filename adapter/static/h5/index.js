// /h5/: finish the wallet sign-in (auth_code in the URL), or offer it; then the home menu.
import { absolute, api, ApiError, config, failed, notice, pageUrl, t } from "./h5.js";

const signedOut = document.getElementById("signed-out");
const signedIn = document.getElementById("signed-in");

function showSignedIn(patients, certified) {
  const me = patients.find((p) => p.relation === "self");
  document.getElementById("hello").textContent = me ? t("hello", { name: me.name }) : "";
  document.getElementById("uncertified").hidden = certified !== false;
  signedOut.hidden = true;
  signedIn.hidden = false;
}

function showSignedOut() {
  signedIn.hidden = true;
  signedOut.hidden = false;
}

async function start() {
  const params = new URLSearchParams(window.location.search);
  // Alipay comes back with auth_code, WeChat's OAuth with code (each with our state).
  const code = params.get("auth_code") || params.get("code");
  const state = params.get("state") || "";
  if (code) {
    // The code is single-use: take it out of the address bar and history before using it.
    for (const name of ["auth_code", "code", "state", "app_id", "source", "scope"]) params.delete(name);
    const rest = params.toString();
    window.history.replaceState(null, "", window.location.pathname + (rest ? `?${rest}` : ""));
    notice(t("signing_in"));
    try {
      const body = { auth_code: code, state };
      if (config.platform) body.platform = config.platform;
      const session = await api("POST", "/session", { body });
      notice("");
      showSignedIn(session.patients, session.certified);
    } catch (error) {
      notice(error instanceof ApiError ? error.message : t("error_generic"), "error");
      showSignedOut();
    }
    return;
  }
  if (!config.signed_in) {
    showSignedOut();
    return;
  }
  try {
    const { patients } = await api("GET", "/patients");
    showSignedIn(patients, patients.some((p) => p.relation === "self") ? undefined : false);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) showSignedOut();
    else failed(error);
  }
}

const login = document.getElementById("login");
login.addEventListener("click", async () => {
  login.disabled = true;
  try {
    // The wallet the page was opened from (?platform=, or its in-app browser); the way back
    // keeps it, so the page knows it again.
    const back = config.platform ? pageUrl("", { platform: config.platform }) : pageUrl();
    const params = { redirect_uri: absolute(back) };
    if (config.platform) params.platform = config.platform;
    const { url } = await api("GET", "/session/login-url", { params });
    window.location.assign(url);
  } catch (error) {
    failed(error);
    login.disabled = false;
  }
});

document.getElementById("logout").addEventListener("click", async () => {
  try {
    await api("DELETE", "/session");
    notice(t("signed_out"));
    showSignedOut();
  } catch (error) {
    failed(error);
  }
});

start();
