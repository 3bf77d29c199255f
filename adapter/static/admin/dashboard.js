// The dashboard refreshes itself: every few seconds it fetches dashboard.json and puts the
// body the server rendered in place (the server holds every text; no page reload).
"use strict";
(function () {
  const board = document.getElementById("dashboard");
  if (!board) return;
  const every = Number(board.dataset.refresh || 5) * 1000;
  async function refresh() {
    try {
      const response = await fetch(board.dataset.source, {
        credentials: "same-origin", headers: { Accept: "application/json" }, cache: "no-store",
      });
      if (response.status === 401) {
        window.location.assign(board.dataset.login);
        return;
      }
      if (response.ok) {
        const data = await response.json();
        board.innerHTML = data.html;
        board.dataset.refreshed = String(Date.now());
      }
    } catch (error) {
      // Offline for a moment: keep what is shown and try again at the next tick.
    }
  }
  window.setInterval(refresh, every);
}());
