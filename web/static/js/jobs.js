// Background jobs: a progress widget that follows a job, and upload forms that start one.
//
//   <div class="job" data-job="42" data-state="queued">
//     <progress max="100"></progress> <span class="job-stage"></span>
//     <span class="job-percent"></span> <span class="job-message" hidden></span>
//   </div>
//
// Every such element on the page is followed (GET /api/v1/jobs/{id} about once a second)
// until its job is done or failed; missing parts are created.  Each update fires
// "yizhan:job" on the element (detail: the job), and "yizhan:job-end" once at the end.
// A form with data-job-upload posts its file (with upload progress) to data-url; the
// answer's job is then followed in a new item of the list before the form.
"use strict";

(function () {
  const FINISHED = ["done", "failed", "cancelled"];
  const POLL_MS = 1000;
  const RETRY_MS = 3000;
  const MAX_NETWORK_ERRORS = 20;

  function strings() {
    const node = document.getElementById("job-strings");
    if (!node) return {};
    try { return JSON.parse(node.textContent || "{}"); } catch (e) { return {}; }
  }

  function part(element, tag, className) {
    let node = element.querySelector("." + className) || (tag === "progress" && element.querySelector("progress"));
    if (!node) {
      node = document.createElement(tag);
      if (tag === "progress") node.max = 100;
      else node.className = className;
      if (element.childNodes.length) element.appendChild(document.createTextNode(" "));
      element.appendChild(node);
    }
    return node;
  }

  function show(element, job) {
    const percent = Math.round((job.progress || 0) * 100);
    const bar = part(element, "progress", "job-progress");
    bar.value = percent;
    bar.setAttribute("aria-valuetext", percent + "%");
    part(element, "span", "job-stage").textContent = job.stage || job.state_label || "";
    part(element, "span", "job-percent").textContent = percent + "%";
    const message = part(element, "span", "job-message");
    message.textContent = job.error || "";
    message.hidden = !job.error;
    element.dataset.state = job.state;
    element.dispatchEvent(new CustomEvent("yizhan:job", { detail: job, bubbles: true }));
  }

  function watch(element, jobId) {
    const id = String(jobId || element.dataset.job || "");
    if (!/^\d+$/.test(id) || element.dataset.watching === "true") return;
    element.dataset.watching = "true";
    let errors = 0;
    async function poll() {
      let response;
      try {
        response = await fetch("/api/v1/jobs/" + id, {
          credentials: "same-origin",
          headers: { Accept: "application/json" },
        });
      } catch (e) {
        errors += 1;
        if (errors < MAX_NETWORK_ERRORS) window.setTimeout(poll, RETRY_MS);
        return;
      }
      errors = 0;
      if (!response.ok) {  // gone, or no longer ours to see: stop following it
        element.dataset.watching = "false";
        return;
      }
      const job = await response.json();
      show(element, job);
      if (FINISHED.indexOf(job.state) >= 0) {
        element.dataset.watching = "false";
        element.dispatchEvent(new CustomEvent("yizhan:job-end", { detail: job, bubbles: true }));
        return;
      }
      window.setTimeout(poll, POLL_MS);
    }
    poll();
  }

  function newItem(list, body) {
    const item = document.createElement("li");
    const who = document.createElement("strong");
    who.textContent = ((body.seat || "") + " " + (body.name || "")).trim();
    item.appendChild(who);
    if (body.document) {
      item.appendChild(document.createTextNode(" · "));
      const link = document.createElement("a");
      link.href = "/api/v1/documents/" + body.document.id + "/content";
      link.textContent = body.document.title || body.document.filename || "";
      item.appendChild(link);
    }
    const widget = document.createElement("div");
    widget.className = "job";
    widget.dataset.job = String(body.job.id);
    item.dataset.jobId = String(body.job.id);
    item.appendChild(widget);
    const empty = list.querySelector(".empty");
    if (empty) empty.remove();
    list.appendChild(item);
    show(widget, body.job);
    return widget;
  }

  function uploadForm(form) {
    const text = strings();
    const bar = form.querySelector("progress");
    const status = form.querySelector(".upload-status");
    const meta = document.querySelector('meta[name="csrf-token"]');
    const list = document.getElementById(form.dataset.list || "statement-list");
    function again(message) {
      if (status) status.textContent = message;
      form.querySelectorAll("button").forEach(function (b) { b.disabled = false; });
    }
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      const request = new XMLHttpRequest();
      request.open("POST", form.dataset.url);
      request.setRequestHeader("X-CSRF-Token", meta ? meta.content : "");
      request.setRequestHeader("Accept", "application/json");
      if (bar) { bar.hidden = false; bar.value = 0; }
      if (status) status.textContent = text.uploading || "";
      request.upload.addEventListener("progress", function (e) {
        if (bar && e.lengthComputable) bar.value = Math.round((e.loaded / e.total) * 100);
      });
      request.addEventListener("load", function () {
        let body = {};
        try { body = JSON.parse(request.responseText); } catch (e) { body = {}; }
        if (request.status === 202 && body.job) {
          form.reset();
          if (bar) bar.hidden = true;
          again("");
          if (list) watch(newItem(list, body), body.job.id);
        } else {
          again((body.error && body.error.message) || text.failed || request.statusText);
        }
      });
      request.addEventListener("error", function () { again(text.network || "Network error"); });
      request.send(new FormData(form));
    });
  }

  window.yizhanJobs = { watch: watch, show: show };

  function start() {
    document.querySelectorAll("[data-job]").forEach(function (element) {
      if (FINISHED.indexOf(element.dataset.state) < 0) watch(element);
    });
    document.querySelectorAll("form[data-job-upload]").forEach(uploadForm);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
