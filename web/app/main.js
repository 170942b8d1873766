// The console's shell: hash routes (the API owns the paths), the navigation, and the session.

import * as api from "./api.js";
import { h, replace } from "./dom.js";
import { renderSignIn } from "./views/signin.js";
import { renderTasks } from "./views/tasks.js";
import { renderDocuments } from "./views/documents.js";
import { renderCases, renderCase } from "./views/cases.js";
import { renderCatalog } from "./views/catalog.js";
import { renderData } from "./views/data.js";
import { renderAdmin } from "./views/admin.js";

const SCREENS = [
  { path: "tasks", label: "Tasks", render: renderTasks },
  { path: "documents", label: "Documents", render: renderDocuments },
  { path: "cases", label: "Cases", render: renderCases },
  { path: "catalog", label: "Catalog", render: renderCatalog },
  { path: "data", label: "Data", render: renderData },
  { path: "admin", label: "Admin", render: renderAdmin, admin: true },
];

const view = document.getElementById("view");
let cleanup = null;

function route() {
  const hash = window.location.hash;
  const [path = "", ...rest] = hash.startsWith("#/") ? hash.slice(2).split("/") : [];
  return { path, rest: rest.map(decodeURIComponent) };
}

function renderNav(current) {
  const nav = document.getElementById("nav");
  if (!api.currentUser()) {
    replace(nav);
    return;
  }
  const links = SCREENS.filter((screen) => !screen.admin || api.isAdmin()).map((screen) =>
    h(
      "a",
      { href: `#/${screen.path}`, "aria-current": screen.path === current ? "page" : false },
      screen.label,
    ),
  );
  replace(
    nav,
    h(
      "ul",
      {},
      links.map((link) => h("li", {}, link)),
    ),
  );
}

function renderAccount() {
  const account = document.getElementById("account");
  const user = api.currentUser();
  if (!user) {
    replace(account);
    return;
  }
  replace(
    account,
    h("span", {}, `Signed in as ${user.username}`, user.role === "admin" ? " (admin)" : ""),
    h("button", { type: "button", class: "link", onclick: () => api.signOut() }, "Sign out"),
  );
}

function show() {
  if (cleanup) cleanup();
  cleanup = null;
  const { path, rest } = route();
  if (!api.currentUser()) {
    renderNav("");
    renderAccount();
    replace(view);
    cleanup = renderSignIn(view) || null;
    return;
  }
  const screen = SCREENS.find((candidate) => candidate.path === path);
  if (!screen) {
    window.location.replace("#/tasks");
    return;
  }
  renderNav(screen.path);
  renderAccount();
  replace(view);
  const render =
    screen.path === "cases" && rest[0] ? (node) => renderCase(node, rest[0]) : screen.render;
  cleanup = render(view) || null;
  const heading = view.querySelector("h1");
  if (heading) {
    heading.tabIndex = -1;
    heading.focus({ preventScroll: true });
  }
  document.title = `${screen.label} · ordo console`;
}

async function start() {
  try {
    await api.loadConfig();
  } catch (error) {
    replace(
      view,
      h("p", { role: "alert" }, `The console could not load its settings: ${error.message}`),
    );
    return;
  }
  api.onSessionChange(() => show());
  window.addEventListener("hashchange", () => {
    if (window.location.hash.startsWith("#/")) show();
  });
  document.querySelector(".skip").addEventListener("click", (event) => {
    event.preventDefault();
    view.focus();
  });
  show();
}

start();
