import { html, type Html } from "./html.js";
import { hasRole, tenantsOf, type Viewer } from "./viewer.js";

export interface PageOptions {
  title: string;
  viewer: Viewer | null;
  /** The session's CSRF token: every form and every htmx request carries it. */
  csrfToken?: string;
  /** Marks the current nav entry. */
  section?: "inbox" | "traces" | "reviews" | "ledger" | "admin";
}

const NAV = [
  ["inbox", "/", "Inbox"],
  ["traces", "/traces", "Traces"],
  ["reviews", "/reviews", "Reviews"],
  ["ledger", "/ledger", "Ledger"],
] as const;

/**
 * The page frame every console page shares. Scripts and styles come from /assets (this package's
 * own files, no CDN); the CSP allows nothing else, so no inline script or handler ever runs
 * (and htmx is told not to inject its inline indicator style, which the CSP would refuse).
 */
export function page(options: PageOptions, body: Html): Html {
  const { viewer } = options;
  const isAdmin = viewer !== null && tenantsOf(viewer).some((t) => hasRole(viewer, t, "admin"));
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="htmx-config" content='{"includeIndicatorStyles":false}'>
${options.csrfToken ? html`<meta name="csrf-token" content="${options.csrfToken}">` : ""}
<title>${options.title} · auditgraph</title>
<link rel="stylesheet" href="/assets/console.css">
<script src="/assets/htmx.min.js" defer></script>
<script src="/assets/sse.js" defer></script>
<script src="/assets/console.js" defer></script>
</head>
<body>
<header class="top">
  <a class="brand" href="/">auditgraph</a>
  ${
    viewer
      ? html`<nav>${NAV.map(([key, href, label]) => html`<a href="${href}"${key === options.section ? html` aria-current="page"` : ""}>${label}</a>`)}${isAdmin ? html`<a href="/admin/accounts"${options.section === "admin" ? html` aria-current="page"` : ""}>Accounts</a>` : ""}</nav>
  <form class="logout" method="post" action="/logout"><input type="hidden" name="_csrf" value="${options.csrfToken ?? ""}"><span class="who">${viewer.name}</span> <button type="submit">Log out</button></form>`
      : ""
  }
</header>
<main>
<h1>${options.title}</h1>
${body}
</main>
</body>
</html>`;
}
