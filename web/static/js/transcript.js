// The transcript page: new final lines arrive live (socket.io "transcript:line");
// a clerk corrects, merges, splits and marks lines through the JSON API.  The parties'
// review panel: the clerk opens and freezes the review; a party confirms the version
// shown (its SHA-256 goes with the request; a stale code sends them to confirm their
// identity first and back) or objects to it.

const root = document.getElementById("transcript");
const list = document.getElementById("transcript-lines");
const status = document.getElementById("transcript-status");
const strings = JSON.parse(document.getElementById("transcript-strings").textContent);
const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
const sessionId = Number(root.dataset.sessionId);
const mayEdit = root.dataset.mayEdit === "true";

function say(text) {
  status.textContent = text;
  status.hidden = !text;
}

function clock(seconds) {
  const whole = Math.floor(seconds);
  return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, "0")}`;
}

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: JSON.stringify(body),
    credentials: "same-origin",
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error((data.error && data.error.message) || strings.failed);
    error.code = data.error && data.error.code;
    throw error;
  }
  return data;
}

function appendLine(line) {
  const empty = document.getElementById("transcript-empty");
  if (empty) empty.remove();
  if (list.querySelector(`[data-line-id="${line.id}"]`)) return;
  const item = document.createElement("li");
  item.className = "transcript-line";
  item.dataset.lineId = String(line.id);
  item.dataset.version = "1";
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = `${line.seat || ""} ${line.name}`;
  const when = document.createElement("span");
  when.className = "when";
  when.textContent = clock(line.start);
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = line.text;
  item.append(who, " ", when, " ", text);
  list.append(item);
  if (mayEdit) say(strings.reload);
}

async function act(event) {
  const button = event.target.closest("[data-action]");
  const item = event.target.closest("[data-line-id]");
  if (!button || !item) return;
  const id = item.dataset.lineId;
  const area = item.querySelector("textarea");
  try {
    if (button.dataset.action === "save" && event.type === "click") {
      const line = await post(`/api/v1/transcript/lines/${id}`, {
        text: area.value,
        version: Number(item.dataset.version),
      });
      item.dataset.version = String(line.version);
      say(strings.saved);
    } else if (button.dataset.action === "undisputed" && event.type === "change") {
      const line = await post(`/api/v1/transcript/lines/${id}/undisputed`, { undisputed: button.checked });
      item.dataset.version = String(line.version);
      item.classList.toggle("undisputed", line.undisputed);
    } else if (button.dataset.action === "merge" && event.type === "click") {
      const next = [...list.querySelectorAll(`[data-identity="${CSS.escape(item.dataset.identity)}"]`)]
        .find((other) => other.compareDocumentPosition(item) & Node.DOCUMENT_POSITION_PRECEDING);
      if (!next) return;
      await post(`/api/v1/transcript/lines/${id}/merge`, { with_line: Number(next.dataset.lineId) });
      window.location.reload();
    } else if (button.dataset.action === "split" && event.type === "click") {
      await post(`/api/v1/transcript/lines/${id}/split`, { at: area.selectionStart });
      window.location.reload();
    }
  } catch (error) {
    say(error.message);
  }
}

list.addEventListener("click", act);
list.addEventListener("change", act);

if (window.io) {
  const socket = window.io({ transports: ["websocket", "polling"] });
  socket.on("connect", () => socket.emit("transcript:watch", { session_id: sessionId }, () => {}));
  socket.on("transcript:line", appendLine);
}

// --- the parties' review -----------------------------------------------------------

const review = document.getElementById("review");
const reviewStatus = document.getElementById("review-status");

function sayReview(text) {
  reviewStatus.textContent = text;
  reviewStatus.hidden = !text;
}

function reviewPath(action) {
  return `/api/v1/sessions/${sessionId}/transcript/review/${action}`;
}

function missingParties(form) {
  return [...form.querySelectorAll("fieldset[data-user-id]")].map((set) => ({
    user_id: Number(set.dataset.userId),
    reason: set.querySelector('[name="reason"]').value,
    note: set.querySelector('[name="note"]').value,
  }));
}

async function reviewAct(event) {
  const target = event.target.closest("[data-review]");
  if (!target) return;
  const action = target.dataset.review;
  if ((action === "open" && event.type !== "click") || (action !== "open" && event.type !== "submit")) {
    return;
  }
  event.preventDefault();
  const sha256 = review.dataset.sha256;
  target.querySelectorAll("button").forEach((button) => { button.disabled = true; });
  if (target.tagName === "BUTTON") target.disabled = true;
  try {
    if (action === "open") {
      await post(reviewPath("open"), {});
    } else if (action === "confirm") {
      await post(reviewPath("confirm"), { sha256 });
    } else if (action === "object") {
      const line = target.querySelector('[name="line_id"]').value;
      await post(reviewPath("object"), {
        sha256,
        text: target.querySelector('[name="text"]').value,
        line_id: line ? Number(line) : null,
      });
    } else if (action === "freeze") {
      await post(reviewPath("freeze"), { sha256, missing: missingParties(target) });
    }
    sayReview(strings.done);
    window.location.reload();
  } catch (error) {
    if (error.code === "reverification_required") {
      const back = `${window.location.pathname}#review`;
      window.location.assign(`/reverify?next=${encodeURIComponent(back)}`);
      return;
    }
    sayReview(error.message);
    target.querySelectorAll("button").forEach((button) => { button.disabled = false; });
    if (target.tagName === "BUTTON") target.disabled = false;
  }
}

if (review) {
  review.addEventListener("click", reviewAct);
  review.addEventListener("submit", reviewAct);
}

// --- DOCX and PDF in the court's layout: a background job, followed until the file is stored

const exportList = document.getElementById("export-list");

function followExport(fmt, job) {
  const item = document.createElement("li");
  item.append(`${fmt.toUpperCase()} `);
  const widget = document.createElement("div");
  widget.className = "job";
  widget.dataset.job = String(job.id);
  item.append(widget);
  exportList.append(item);
  widget.addEventListener("yizhan:job-end", (event) => {
    const done = event.detail;
    if (done.state !== "done" || !done.result || !done.result.document_id) return;
    const link = document.createElement("a");
    link.href = `/api/v1/documents/${done.result.document_id}/content`;
    link.textContent = strings.export_ready;
    link.dataset.exported = fmt;
    link.title = `SHA-256 ${done.result.sha256 || ""}`;
    item.append(" ", link);
  });
  window.yizhanJobs.show(widget, job);
  window.yizhanJobs.watch(widget, job.id);
}

document.querySelectorAll("[data-export]").forEach((button) => {
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const answer = await post(`/api/v1/sessions/${sessionId}/transcript/exports`, {
        format: button.dataset.export,
      });
      followExport(button.dataset.export, answer.job);
    } catch (error) {
      say(error.message);
    } finally {
      button.disabled = false;
    }
  });
});
