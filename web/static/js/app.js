// Yizhan page helpers.  No framework: pages work without script; this adds comfort.
"use strict";

(function () {
  const meta = document.querySelector('meta[name="csrf-token"]');
  const csrf = meta ? meta.content : "";

  // fetch() wrapper for the JSON API: sends the CSRF token and cookies.
  window.yizhan = {
    api: async function (method, path, body) {
      const response = await fetch(path, {
        method: method,
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const data = await response.json().catch(() => ({}));
      if (!response.ok) {
        const error = new Error((data.error && data.error.message) || response.statusText);
        error.status = response.status;
        throw error;
      }
      return data;
    },
  };

  // Disable a form's buttons once it is submitted, so a slow network does not send it twice.
  document.addEventListener("submit", function (event) {
    const form = event.target;
    window.setTimeout(function () {
      form.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; });
    }, 0);
  });
})();
