// Interface strings: translated by the server into the page's
// <script type="application/json" id="room-strings"> block (never executed).
"use strict";

let table = null;

function load() {
  if (table === null) {
    const node = document.getElementById("room-strings");
    try {
      table = node ? JSON.parse(node.textContent || "{}") : {};
    } catch (error) {
      console.error("room: the strings block is not valid JSON", error);
      table = {};
    }
  }
  return table;
}

/**
 * The translated string for `key`; `{name}` placeholders are filled from `params`.
 * A missing key shows the key itself, so a gap is visible rather than silent.
 */
export function t(key, params) {
  const text = Object.prototype.hasOwnProperty.call(load(), key) ? load()[key] : key;
  if (!params) return text;
  return text.replace(/\{(\w+)\}/g, (whole, name) =>
    Object.prototype.hasOwnProperty.call(params, name) ? String(params[name]) : whole,
  );
}
