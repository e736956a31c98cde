// Every htmx request carries the session's CSRF token (read from the page's meta tag: no inline script).
document.addEventListener("htmx:configRequest", (event) => {
  const meta = document.querySelector('meta[name="csrf-token"]');
  if (meta) event.detail.headers["csrf-token"] = meta.getAttribute("content");
});
