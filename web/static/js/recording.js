// The playback page of a session's recording: the media element plays the composite (or
// the file chosen from the list); choosing a transcript line or a timeline entry seeks to
// its offset and plays; while it plays, the line being spoken is marked (class
// "is-current", aria-current) and kept in view.  Staff can have the playable files made
// again: the answer's job is followed with jobs.js and the page reloads when it is done.

const root = document.getElementById("recording");
const lineList = document.getElementById("recording-lines");
const status = document.getElementById("recording-status");
const strings = JSON.parse(document.getElementById("recording-strings").textContent);
const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
const sessionId = Number(root.dataset.sessionId);
// a line starting at t is current from t on (currentTime may read a hair below a seek target)
const EPSILON = 0.05;

let media = document.getElementById("recording-media");
let current = null;

const lines = lineList
  ? [...lineList.querySelectorAll(".recording-line")]
      .map((item) => ({ item, offset: Number(item.dataset.offset) }))
      .sort((a, b) => a.offset - b.offset)
  : [];

function say(text) {
  if (!status) return;
  status.textContent = text;
  status.hidden = !text;
}

function keepInView(item) {
  // scroll the list only, never the page under the player
  const top = item.offsetTop;
  const bottom = top + item.offsetHeight;
  if (top < lineList.scrollTop || bottom > lineList.scrollTop + lineList.clientHeight) {
    lineList.scrollTop = Math.max(0, top - lineList.clientHeight / 3);
  }
}

function mark(item) {
  if (item === current) return;
  if (current) {
    current.classList.remove("is-current");
    current.removeAttribute("aria-current");
  }
  current = item;
  if (item) {
    item.classList.add("is-current");
    item.setAttribute("aria-current", "true");
    keepInView(item);
  }
}

function lineAt(seconds) {
  let found = null;
  for (const line of lines) {
    if (line.offset <= seconds + EPSILON) found = line.item;
    else break;
  }
  return found;
}

function follow() {
  if (media) mark(lineAt(media.currentTime));
}

function play() {
  const started = media.play();
  if (started && started.catch) started.catch(() => {});
}

function seek(offset, item) {
  if (!media) return;
  media.currentTime = Math.max(0, offset);
  mark(item || lineAt(offset));
  play();
}

function listen(element) {
  element.addEventListener("timeupdate", follow);
  element.addEventListener("seeked", follow);
  element.addEventListener("play", follow);
}

// --- choosing a file: the composite or one participant's ----------------------------

function replaceElement(hasVideo) {
  const wanted = hasVideo ? "VIDEO" : "AUDIO";
  if (media.tagName === wanted) return;
  const next = document.createElement(wanted.toLowerCase());
  next.id = media.id;
  next.className = media.className;
  next.controls = true;
  next.preload = "metadata";
  if (hasVideo) next.setAttribute("playsinline", "");
  media.pause();
  media.replaceWith(next);
  media = next;
  listen(media);
}

function choose(button) {
  const time = media.currentTime;
  const playing = !media.paused;
  replaceElement(button.dataset.hasVideo === "true");
  media.src = button.dataset.src;
  media.dataset.fileId = button.dataset.fileId;
  media.addEventListener(
    "loadedmetadata",
    () => {
      media.currentTime = Math.min(time, media.duration || time);
      if (playing) play();
    },
    { once: true },
  );
  document.querySelectorAll("#recording-files [data-file-id]").forEach((other) => {
    other.setAttribute("aria-pressed", other === button ? "true" : "false");
  });
  const download = document.getElementById("recording-download");
  if (download) download.href = button.dataset.downloadUrl;
  const name = document.getElementById("recording-now-name");
  if (name) name.textContent = button.dataset.name;
}

// --- making the playable files again -------------------------------------------------

async function compose(button) {
  button.disabled = true;
  say("");
  try {
    const response = await fetch(`/api/v1/sessions/${sessionId}/recording/compose`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf, Accept: "application/json" },
      body: "{}",
      credentials: "same-origin",
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error((data.error && data.error.message) || strings.failed);
    followJob(data.job);
    say(strings.queued);
  } catch (error) {
    say(error.message);
    button.disabled = false;
  }
}

function followJob(job) {
  let widget = document.getElementById("recording-compose-job");
  if (!widget) {
    widget = document.createElement("div");
    widget.className = "job";
    widget.id = "recording-compose-job";
    document.getElementById("recording-compose").prepend(widget);
  }
  widget.dataset.job = String(job.id);
  widget.dataset.watching = "false";
  if (window.yizhanJobs) {
    window.yizhanJobs.show(widget, job);
    window.yizhanJobs.watch(widget, job.id);
  }
}

document.addEventListener("yizhan:job-end", (event) => {
  if (!event.target.closest || !event.target.closest("#recording-compose")) return;
  if (event.detail && event.detail.state === "done") {
    say(strings.done);
    window.location.reload();
  } else {
    const button = document.querySelector('[data-action="compose"]');
    if (button) button.disabled = false;
  }
});

// --- legal hold ----------------------------------------------------------------------

async function hold(form) {
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  say("");
  const reason = form.elements.reason ? form.elements.reason.value : "";
  try {
    const response = await fetch(`/api/v1/sessions/${sessionId}/recording/hold`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf, Accept: "application/json" },
      body: JSON.stringify({ hold: form.dataset.hold === "true", reason }),
      credentials: "same-origin",
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error((data.error && data.error.message) || strings.failed);
    window.location.reload();
  } catch (error) {
    say(error.message);
    button.disabled = false;
  }
}

document.addEventListener("submit", (event) => {
  if (event.target.id !== "hold-form") return;
  event.preventDefault();
  hold(event.target);
});

// --- wiring ------------------------------------------------------------------------

document.addEventListener("click", (event) => {
  const target = event.target.closest("button");
  if (!target) return;
  if (target.matches("[data-action=compose]")) {
    compose(target);
  } else if (target.matches("#recording-files [data-file-id]") && media) {
    choose(target);
  } else if (target.matches(".seek[data-offset]")) {
    const item = target.closest(".recording-line");
    seek(Number(target.dataset.offset), item);
  }
});

if (media) listen(media);
