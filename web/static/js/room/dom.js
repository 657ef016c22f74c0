// Small DOM helpers.  Text always goes in through textContent: nothing from the
// server or from other members is ever parsed as HTML.
"use strict";

/**
 * Build an element.  `props`: class (string), text, dataset (object), attrs (object),
 * on (object of event -> handler), hidden, disabled, type, value, and other DOM
 * properties set as they are.
 */
export function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name === "attrs") {
      for (const [attr, attrValue] of Object.entries(value)) {
        if (attrValue !== undefined && attrValue !== null && attrValue !== false) {
          node.setAttribute(attr, attrValue === true ? "" : String(attrValue));
        }
      }
    } else if (name === "on") {
      for (const [event, handler] of Object.entries(value)) node.addEventListener(event, handler);
    } else node[name] = value;
  }
  for (const child of [].concat(children)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

export function $all(selector, root = document) {
  return Array.from(root.querySelectorAll(selector));
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
}

/** Show or hide with the `hidden` attribute (room.css makes [hidden] win over classes). */
export function show(node, visible) {
  if (node) node.hidden = !visible;
}

/** First letter(s) of a name for an avatar placeholder. */
export function initials(name) {
  const text = (name || "").trim();
  if (!text) return "?";
  // Chinese names: the surname character; other scripts: first letters of two words.
  if (/[\u3400-\u9fff]/.test(text[0])) return text[0];
  return text
    .split(/\s+/)
    .slice(0, 2)
    .map((part) => part[0].toUpperCase())
    .join("");
}

export function sleep(ms) {
  return new Promise((resolve) => window.setTimeout(resolve, ms));
}

/** Local clock time "HH:MM" of an ISO-8601 instant. */
export function clockTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  return date.toLocaleTimeString(document.documentElement.lang || undefined, {
    hour: "2-digit",
    minute: "2-digit",
  });
}
