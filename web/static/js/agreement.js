// The agreement page: the dispute's mediator starts the agreement, saves versions (the
// text and the structured terms, with the version they were edited from: a newer save by
// someone else is refused and the editor keeps what was typed), re-fills the text from the
// terms on request and puts the saved version up for signing.  The court admin's template
// page: preview with sample data, save as the court's own, revert to the platform's.

const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

async function call(method, path, body) {
  const response = await fetch(path, {
    method: method,
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf, Accept: "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error((data.error && data.error.message) || response.statusText);
    error.status = response.status;
    error.field = data.error && data.error.field;
    throw error;
  }
  return data;
}

function strings(id) {
  const island = document.getElementById(id);
  return island ? JSON.parse(island.textContent) : {};
}

function fill(text, values) {
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}

// the drafting page ---------------------------------------------------------------------

function draftingPage(root) {
  const text = strings("agreement-strings");
  const status = document.getElementById("agreement-status");
  const form = document.getElementById("agreement-form");
  const fieldError = document.getElementById("agreement-field-error");
  const base = `/api/v1/disputes/${root.dataset.disputeId}/agreement`;
  let baseVersion = Number(root.dataset.baseVersion || "0");
  let dirty = false;

  function say(message, reloadLink) {
    status.textContent = message;
    if (reloadLink) {
      const link = document.createElement("a");
      link.href = window.location.pathname;
      link.textContent = text.reload;
      status.append(" ", link);
    }
    status.hidden = !message;
  }

  function clearErrors() {
    if (!form) return;
    form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
    fieldError.hidden = true;
  }

  function showError(error) {
    if (error.status === 409 && form) {
      say(`${error.message} ${text.stale}`, true);
      return;
    }
    if (error.field && form) {
      const target = form.querySelector(`[data-field="${CSS.escape(error.field)}"]`);
      if (target) {
        target.setAttribute("aria-invalid", "true");
        target.focus();
      }
      fieldError.textContent = error.message;
      fieldError.hidden = false;
      return;
    }
    say(error.message || text.failed);
  }

  function reloadSoon(message) {
    say(message || text.done);
    window.setTimeout(() => window.location.assign(window.location.pathname), 600);
  }

  const startButton = root.querySelector('[data-action="start"]');
  if (startButton) {
    startButton.addEventListener("click", async () => {
      startButton.disabled = true;
      try {
        await call("POST", base, {});
        reloadSoon();
      } catch (error) {
        startButton.disabled = false;
        showError(error);
      }
    });
  }
  if (!form) return;

  const rows = document.getElementById("instalment-rows");
  const rowTemplate = document.getElementById("instalment-template");

  function renumber() {
    rows.querySelectorAll("li.instalment").forEach((row, index) => {
      row.querySelector('[name="due"]').dataset.field = `terms.instalments.${index}.due`;
      row.querySelector('[name="amount"]').dataset.field = `terms.instalments.${index}.amount`;
    });
  }

  function optionalId(value) {
    return value ? Number(value) : null;
  }

  function terms() {
    const value = (name) => form.elements[name].value.trim();
    return {
      title: value("title"),
      payer: optionalId(value("payer")),
      payee: optionalId(value("payee")),
      total: value("total") || null,
      deadline: value("deadline") || null,
      instalments: Array.from(rows.querySelectorAll("li.instalment")).map((row) => ({
        due: row.querySelector('[name="due"]').value || null,
        amount: row.querySelector('[name="amount"]').value.trim() || null,
      })),
      method: value("method"),
      costs_borne_by: value("costs_borne_by"),
      costs: value("costs"),
      other_terms: form.elements.other_terms.value.split("\n").map((t) => t.trim()).filter(Boolean),
    };
  }

  form.addEventListener("input", () => { dirty = true; });
  form.addEventListener("click", (event) => {
    const button = event.target.closest("[data-action]");
    if (!button) return;
    if (button.dataset.action === "add-instalment") {
      rows.append(rowTemplate.content.cloneNode(true));
      renumber();
      dirty = true;
      const added = rows.lastElementChild.querySelector('[name="due"]');
      if (added) added.focus();
    } else if (button.dataset.action === "remove-instalment") {
      button.closest("li.instalment").remove();
      renumber();
      dirty = true;
    }
  });

  async function act(button, work) {
    clearErrors();
    button.disabled = true;
    try {
      await work();
    } catch (error) {
      showError(error);
    } finally {
      button.disabled = false;
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const button = form.querySelector('button[type="submit"]');
    act(button, async () => {
      const state = await call("PUT", base, {
        text: form.elements.text.value,
        terms: terms(),
        note: form.elements.note.value.trim(),
        base_version: baseVersion,
      });
      baseVersion = state.current_version;
      root.dataset.baseVersion = String(baseVersion);
      dirty = false;
      reloadSoon(fill(text.saved, { version: state.current_version }));
    });
  });

  form.querySelector('[data-action="refill"]').addEventListener("click", (event) => {
    if (!window.confirm(text.refill_confirm)) return;
    act(event.currentTarget, async () => {
      const state = await call("POST", `${base}/refill`, {
        base_version: baseVersion,
        terms: terms(),
        note: form.elements.note.value.trim() || text.refill_note,
      });
      dirty = false;
      reloadSoon(fill(text.refilled, { version: state.current_version }));
    });
  });

  const signingButton = form.querySelector('[data-action="signing"]');
  if (signingButton) signingButton.addEventListener("click", (event) => {
    if (dirty) {
      say(text.unsaved);
      return;
    }
    if (!window.confirm(text.signing_confirm)) return;
    act(event.currentTarget, async () => {
      await call("POST", `${base}/signing`, { base_version: baseVersion });
      reloadSoon();
    });
  });

  window.addEventListener("beforeunload", (event) => {
    if (dirty) event.preventDefault();
  });
}

// the court admin's templates -----------------------------------------------------------

function templatePage(root) {
  const text = strings("agreement-template-strings");
  const status = document.getElementById("template-status");
  const form = document.getElementById("template-form");
  const area = form.elements.body;
  const preview = document.getElementById("template-preview");
  const path = `/api/v1/admin/agreement-templates/${encodeURIComponent(root.dataset.disputeType)}`;
  const defaultBody = JSON.parse(document.getElementById("template-default").textContent);

  function say(message) {
    status.textContent = message;
    status.hidden = !message;
  }

  async function act(button, work) {
    button.disabled = true;
    say("");
    try {
      await work();
    } catch (error) {
      say(error.message || text.failed);
      area.focus();
    } finally {
      button.disabled = false;
    }
  }

  form.addEventListener("click", (event) => {
    const button = event.target.closest("[data-action]");
    if (!button) return;
    const action = button.dataset.action;
    if (action === "preview") {
      act(button, async () => {
        const filled = await call("POST", `${path}/preview`, { body: area.value });
        document.getElementById("template-preview-title").textContent = filled.title;
        document.getElementById("template-preview-text").textContent = filled.text;
        preview.hidden = false;
      });
    } else if (action === "load-default") {
      area.value = defaultBody;
      say(text.loaded);
    } else if (action === "revert") {
      if (!window.confirm(text.revert_confirm)) return;
      act(button, async () => {
        await call("DELETE", path);
        say(text.reverted);
        window.setTimeout(() => window.location.reload(), 600);
      });
    }
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    act(form.querySelector('button[type="submit"]'), async () => {
      const saved = await call("PUT", path, {
        body: area.value,
        base_version: Number(root.dataset.baseVersion || "0"),
      });
      root.dataset.baseVersion = String(saved.version);
      say(fill(text.saved, { version: saved.version }));
      window.setTimeout(() => window.location.reload(), 800);
    });
  });
}

const drafting = document.getElementById("agreement");
if (drafting) draftingPage(drafting);
const editor = document.getElementById("template-editor");
if (editor) templatePage(editor);
