// The ledger page's verify progress: an EventSource on the stream's verify events (no inline
// script: the CSP forbids it). Progress and the outcome are written with textContent.
(() => {
  document.querySelectorAll("[data-verify-events]").forEach((box) => {
    var source = new EventSource(box.getAttribute("data-verify-events"));
    var progress = box.querySelector("progress");
    var status = box.querySelector(".verify-status");
    source.addEventListener("progress", (e) => {
      var p = JSON.parse(e.data);
      if (progress) {
        progress.max = Math.max(1, p.total);
        progress.value = p.verified;
      }
      if (status) status.textContent = `verified ${p.verified} of ${p.total} records`;
    });
    source.addEventListener("done", (e) => {
      var d = JSON.parse(e.data);
      if (progress) {
        progress.max = 1;
        progress.value = 1;
      }
      if (status) status.textContent = d.ok ? `verified: ${d.count} records, all intact` : `FAILED at position ${d.position}: ${d.reason} (${d.detail})`;
      box.setAttribute("data-outcome", d.ok ? "ok" : "failed");
      source.close();
    });
    source.onerror = () => {
      if (box.getAttribute("data-outcome")) source.close();
    };
  });
})();
