// The transcript page: new final lines arrive live (socket.io "transcript:line");
// a clerk corrects, merges, splits and marks lines through the JSON API.

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
  if (!response.ok) throw new Error((data.error && data.error.message) || strings.failed);
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
