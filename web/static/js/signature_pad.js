// Signing the mediation agreement: a signature pad on a canvas (pointer events, so a
// mouse, a finger and a pen all draw; strokes smoothed through their midpoints; pen
// pressure widens the line), exported as a PNG with canvas.toBlob and sent with the
// SHA-256 of the PDF the signer read. A stale one-time code sends the signer to confirm
// their identity and back. Also posts the document check form of /verify (the upload
// needs the CSRF header, which a plain form cannot send).
"use strict";

(function () {
  const meta = document.querySelector('meta[name="csrf-token"]');
  const csrf = meta ? meta.content : "";

  function readStrings(id) {
    const node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : {};
  }

  // --- the pad ---------------------------------------------------------------------

  function SignaturePad(canvas) {
    const context = canvas.getContext("2d");
    let strokes = 0;
    let points = [];
    let drawing = false;
    let ratio = 1;

    function fit() {
      // draw at the screen's pixel density, so the exported image is sharp
      const box = canvas.getBoundingClientRect();
      if (!box.width || !box.height) return;
      const kept = strokes ? canvas.toDataURL("image/png") : null;
      ratio = Math.min(window.devicePixelRatio || 1, 3);
      canvas.width = Math.round(box.width * ratio);
      canvas.height = Math.round(box.height * ratio);
      context.setTransform(ratio, 0, 0, ratio, 0, 0);
      context.lineCap = "round";
      context.lineJoin = "round";
      context.strokeStyle = "#10131a";
      context.fillStyle = "#10131a";
      if (kept) {
        const image = new Image();
        image.onload = function () { context.drawImage(image, 0, 0, box.width, box.height); };
        image.src = kept;
      }
    }

    function at(event) {
      const box = canvas.getBoundingClientRect();
      const pressure = event.pointerType === "pen" && event.pressure > 0 ? event.pressure : 0.5;
      return { x: event.clientX - box.left, y: event.clientY - box.top, p: pressure };
    }

    function width(point) {
      return 1.2 + point.p * 2.6;
    }

    function dot(point) {
      context.beginPath();
      context.arc(point.x, point.y, width(point) / 2, 0, Math.PI * 2);
      context.fill();
    }

    function segment() {
      // a quadratic curve from the midpoint of the last two segments to the next one
      const n = points.length;
      if (n < 3) return;
      const a = points[n - 3], b = points[n - 2], c = points[n - 1];
      context.beginPath();
      context.lineWidth = width(b);
      context.moveTo((a.x + b.x) / 2, (a.y + b.y) / 2);
      context.quadraticCurveTo(b.x, b.y, (b.x + c.x) / 2, (b.y + c.y) / 2);
      context.stroke();
    }

    function add(point) {
      const last = points[points.length - 1];
      if (last && Math.hypot(point.x - last.x, point.y - last.y) < 0.8) return;
      points.push(point);
      segment();
    }

    canvas.addEventListener("pointerdown", function (event) {
      if (event.button !== undefined && event.button > 0) return;
      event.preventDefault();
      canvas.setPointerCapture(event.pointerId);
      drawing = true;
      const point = at(event);
      points = [point, point];
      dot(point);
      strokes += 1;
      canvas.dispatchEvent(new Event("signature-change"));
    });
    canvas.addEventListener("pointermove", function (event) {
      if (!drawing) return;
      event.preventDefault();
      const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
      (events.length ? events : [event]).forEach(function (e) { add(at(e)); });
    });
    function end(event) {
      if (!drawing) return;
      drawing = false;
      add(at(event));
      const n = points.length;
      if (n >= 2) {  // finish the last half segment
        const b = points[n - 2], c = points[n - 1];
        context.beginPath();
        context.lineWidth = width(c);
        context.moveTo((b.x + c.x) / 2, (b.y + c.y) / 2);
        context.lineTo(c.x, c.y);
        context.stroke();
      }
      points = [];
    }
    canvas.addEventListener("pointerup", end);
    canvas.addEventListener("pointercancel", end);
    canvas.addEventListener("pointerleave", function (event) { if (drawing) end(event); });

    fit();
    window.addEventListener("resize", fit);

    return {
      isEmpty: function () { return strokes === 0; },
      clear: function () {
        context.clearRect(0, 0, canvas.width, canvas.height);
        strokes = 0;
        points = [];
        canvas.dispatchEvent(new Event("signature-change"));
      },
      toBase64: function () {
        return new Promise(function (resolve, reject) {
          canvas.toBlob(function (blob) {
            if (!blob) { reject(new Error("no image")); return; }
            const reader = new FileReader();
            reader.onload = function () { resolve(String(reader.result).split(",", 2)[1]); };
            reader.onerror = function () { reject(reader.error); };
            reader.readAsDataURL(blob);
          }, "image/png");
        });
      },
    };
  }

  // --- the signing page ------------------------------------------------------------

  async function post(path, body) {
    const response = await fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf, Accept: "application/json" },
      body: JSON.stringify(body),
    });
    const data = await response.json().catch(function () { return {}; });
    if (!response.ok) {
      const error = new Error((data.error && data.error.message) || response.statusText);
      error.code = data.error && data.error.code;
      throw error;
    }
    return data;
  }

  function signingPage(root) {
    const strings = readStrings("signing-strings");
    const status = document.getElementById("signing-status");
    const disputeId = root.dataset.disputeId;
    const base = `/api/v1/disputes/${disputeId}/agreement`;

    function say(text) {
      status.textContent = text;
      status.hidden = !text;
    }

    function failed(error, form) {
      if (error.code === "reverification_required") {
        const back = window.location.pathname + window.location.search;
        window.location.assign(`/reverify?next=${encodeURIComponent(back)}`);
        return;
      }
      say(error.message || strings.failed);
      if (form) form.querySelectorAll("button").forEach(function (b) { b.disabled = false; });
    }

    const form = document.getElementById("signing-form");
    const canvas = document.getElementById("signature-canvas");
    if (form && canvas) {
      const pad = SignaturePad(canvas);
      const submit = form.querySelector("button[type=submit]");
      const consent = document.getElementById("signing-consent");
      function update() { submit.disabled = pad.isEmpty(); }
      canvas.addEventListener("signature-change", update);
      update();
      document.getElementById("signature-clear").addEventListener("click", function () {
        pad.clear();
        say("");
      });
      form.addEventListener("submit", async function (event) {
        event.preventDefault();
        event.stopPropagation();  // this form manages its own buttons
        if (pad.isEmpty()) { say(strings.empty); return; }
        if (!consent.checked) { say(strings.consent); return; }
        form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
        try {
          const image = await pad.toBase64();
          await post(`${base}/signatures`, { document_sha256: root.dataset.sha256, image: image });
          say(strings.signed);
          window.location.reload();
        } catch (error) {
          failed(error, form);
        }
      });
    }

    const refusal = document.getElementById("refusal-form");
    if (refusal) {
      refusal.addEventListener("submit", async function (event) {
        event.preventDefault();
        event.stopPropagation();
        if (!window.confirm(strings.confirm_refusal)) return;
        refusal.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
        try {
          await post(`${base}/refusal`, { reason: refusal.elements.reason.value });
          say(strings.refused);
          window.location.reload();
        } catch (error) {
          failed(error, refusal);
        }
      });
    }
  }

  // --- the document check (/verify) --------------------------------------------------

  function verifyPage(form) {
    const strings = readStrings("verify-strings");
    const result = document.getElementById("verify-result");
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      event.stopPropagation();
      form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
      result.textContent = strings.checking || "";
      try {
        const response = await fetch(form.action, {
          method: "POST",
          credentials: "same-origin",
          headers: { "X-CSRF-Token": csrf, Accept: "text/html" },
          body: new FormData(form),
        });
        const page = new DOMParser().parseFromString(await response.text(), "text/html");
        const found = page.getElementById("verify-result");
        const message = page.querySelector(".error-page .message");
        result.replaceChildren();
        if (found) {
          result.append(...Array.from(found.childNodes).map(function (n) { return document.importNode(n, true); }));
        } else {
          result.textContent = message ? message.textContent : strings.failed;
        }
      } catch (error) {
        result.textContent = strings.failed;
      } finally {
        form.querySelectorAll("button").forEach(function (b) { b.disabled = false; });
      }
    });
  }

  const root = document.getElementById("signing");
  if (root) signingPage(root);
  const verifyForm = document.getElementById("verify-form");
  if (verifyForm) verifyPage(verifyForm);
})();
