// Build DOM nodes without innerHTML, so nothing the API returns is ever parsed as markup.

export function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      node.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (name === "dataset") {
      Object.assign(node.dataset, value);
    } else if (name in node && typeof value !== "string") {
      node[name] = value;
    } else {
      node.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
}

export function replace(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

let fieldIds = 0;

// A labelled field with a place for its error; returns {wrap, input, setError}.
export function field(label, input, hint) {
  const id = input.id || `f${++fieldIds}`;
  input.id = id;
  const error = h("p", { class: "field-error", id: `${id}-error` });
  const hintNode = hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null;
  if (hintNode) input.setAttribute("aria-describedby", hintNode.id);
  const wrap = h("div", { class: "field" }, h("label", { for: id }, label), input, hintNode, error);
  const setError = (message) => {
    error.textContent = message ? `Error: ${message}` : "";
    const described = [hintNode && hintNode.id, message && error.id].filter(Boolean).join(" ");
    if (message) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
    if (described) input.setAttribute("aria-describedby", described);
    else input.removeAttribute("aria-describedby");
  };
  return { wrap, input, setError };
}

export function select(options, value) {
  return h(
    "select",
    {},
    options.map(([optionValue, text]) =>
      h("option", { value: optionValue, selected: optionValue === value }, text),
    ),
  );
}

// A status badge: always text, colour only repeats it.
export function badge(status) {
  return h("span", { class: `badge badge-${status}` }, status);
}

export function alertBox() {
  const box = h("div", { class: "alert", role: "alert", hidden: true });
  return {
    node: box,
    show: (message) => {
      box.textContent = message || "";
      box.hidden = !message;
    },
  };
}

export function toast(message) {
  const node = document.getElementById("toast");
  node.textContent = message;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => {
    node.textContent = "";
  }, 6000);
}

export function formatTime(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

export function elapsed(startIso, endIso) {
  const start = Date.parse(startIso);
  if (Number.isNaN(start)) return "—";
  const end = endIso ? Date.parse(endIso) : Date.now();
  const seconds = Math.max(0, (end - start) / 1000);
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  if (seconds < 120) return `${Math.round(seconds)} s`;
  return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

export function table(caption, headers, rows) {
  return h(
    "div",
    { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption },
    h(
      "table",
      {},
      h("caption", {}, caption),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          headers.map((text) => h("th", { scope: "col" }, text)),
        ),
      ),
      h("tbody", {}, rows),
    ),
  );
}

// A form's submit handler: no page load, and its button disabled until `action` settles.
export function onSubmit(button, action) {
  return async (event) => {
    event.preventDefault();
    button.disabled = true;
    try {
      await action();
    } finally {
      button.disabled = false;
    }
  };
}

// An API error: each field's message next to its field (the first one focused), anything
// else in the alert.
export function showError(error, fields, alert) {
  const messages = error.fieldErrors ? error.fieldErrors() : {};
  const shown = Object.entries(messages).filter(([name]) => fields[name]);
  for (const [name, message] of shown) fields[name].setError(message);
  if (shown.length) fields[shown[0][0]].input.focus();
  else alert.show(error.message);
}

// "More …" for a cursor-paged list: hidden while there is no next page, disabled while loading.
export function moreButton(label, loadMore, onError) {
  const button = h("button", { type: "button", class: "secondary", hidden: true }, label);
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await loadMore();
    } catch (error) {
      onError(error);
    } finally {
      button.disabled = false;
    }
  });
  return button;
}
