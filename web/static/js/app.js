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

// File uploads (evidence, a judgment) with a progress bar: every form.upload[data-url]
// (XMLHttpRequest reports upload progress; fetch does not).
document.querySelectorAll("form.upload[data-url]").forEach(function (form) {
  const bar = form.querySelector("progress");
  const status = form.querySelector(".upload-status");
  const meta = document.querySelector('meta[name="csrf-token"]');
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const request = new XMLHttpRequest();
    request.open("POST", form.dataset.url);
    request.setRequestHeader("X-CSRF-Token", meta ? meta.content : "");
    request.setRequestHeader("Accept", "application/json");
    bar.hidden = false;
    bar.value = 0;
    request.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable) bar.value = Math.round((e.loaded / e.total) * 100);
    });
    request.addEventListener("load", function () {
      let body = {};
      try { body = JSON.parse(request.responseText); } catch (e) { body = {}; }
      if (request.status === 201) {
        window.location.reload();
      } else {
        status.textContent = (body.error && body.error.message) || request.statusText;
        form.querySelectorAll("button").forEach(function (b) { b.disabled = false; });
      }
    });
    request.addEventListener("error", function () {
      status.textContent = form.dataset.networkError || "Network error";
      form.querySelectorAll("button").forEach(function (b) { b.disabled = false; });
    });
    request.send(new FormData(form));
  });
});
