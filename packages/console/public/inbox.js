// The inbox's held calls count down in the browser: the server sends the deadline (data-deadline),
// and a swap by the live stream brings new ones; no inline script (the CSP allows none).
function formatDuration(ms) {
  const total = Math.ceil(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  if (h > 0) return `${h}h ${m}m`;
  return m > 0 ? `${m}m ${s}s` : `${s}s`;
}

function tick() {
  for (const el of document.querySelectorAll(".time-left[data-deadline]")) {
    const left = Date.parse(el.getAttribute("data-deadline")) - Date.now();
    if (Number.isNaN(left)) continue;
    const then = el.getAttribute("data-default") || "default";
    el.textContent = left <= 0 ? `expired (${then} taken)` : `time left ${formatDuration(left)} (then ${then})`;
  }
}

setInterval(tick, 1000);
