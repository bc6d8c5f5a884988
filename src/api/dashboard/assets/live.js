// Keeps a dashboard page live: every few seconds it asks for the same page with the ETag it
// has, and on a change swaps in the new <main>. A 304 costs no body. It waits while a form on
// the page is being filled in, and goes to the sign-in page when the session has ended.
"use strict";
(function () {
  const main = document.getElementById("live");
  if (!main) return;
  const seconds = Number(main.dataset.refresh) || 5;
  let etag = null;

  function editing() {
    const active = document.activeElement;
    if (active && active.form && main.contains(active)) return true;
    for (const field of main.querySelectorAll("input, textarea")) {
      if (field.type !== "hidden" && field.value !== field.defaultValue) return true;
    }
    for (const option of main.querySelectorAll("option")) {
      if (option.selected !== option.defaultSelected) return true;
    }
    for (const details of main.querySelectorAll("details")) {
      if (details.open) return true;
    }
    return false;
  }

  async function refresh() {
    if (document.visibilityState !== "visible" || editing()) return;
    // The header tells the daemon this is a refresh, not a person: it keeps the one-time notice
    // for the next page the person opens and does not count as use of the session.
    const headers = { "X-Campaignd-Live": "1" };
    if (etag) headers["If-None-Match"] = etag;
    let response;
    try {
      response = await fetch(window.location.href, { headers, credentials: "same-origin", cache: "no-cache" });
    } catch (err) {
      main.dataset.stale = "true";
      return;
    }
    delete main.dataset.stale;
    if (response.redirected && new URL(response.url).pathname === "/login") {
      window.location.assign("/login");
      return;
    }
    if (response.status === 304 || !response.ok) return;
    etag = response.headers.get("ETag");
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = page.getElementById("live");
    if (fresh && !editing()) main.replaceChildren(...fresh.childNodes);
  }

  window.setInterval(refresh, seconds * 1000);
})();
