// Operators: the lane live, recent failures with retry, and the users.

import * as api from "../api.js";
import { alertBox, elapsed, formatTime, h, moreButton, replace, table, toast } from "../dom.js";
import { poll } from "../poll.js";

function seconds(value) {
  if (value === null || value === undefined) return "none waiting";
  return value < 120 ? `${value.toFixed(1)} s` : `${Math.round(value / 60)} min`;
}

function lanePanel() {
  const node = h("section", { "aria-labelledby": "lane" }, h("h2", { id: "lane" }, "Lane"));
  const body = h("div", { "aria-live": "polite" }, h("p", {}, "Loading…"));
  node.append(body);
  let last = "";
  const poller = poll(
    async () => {
      const lane = await api.get("/admin/lane");
      const running = lane.running;
      replace(
        body,
        h(
          "dl",
          { class: "stats" },
          stat("Pending", lane.pending),
          stat("Processing", lane.processing),
          stat("Oldest wait", seconds(lane.oldest_pending_age_seconds)),
          stat("Dead letters", lane.dead_letters, lane.dead_letters > 0),
          stat("Failed in the last hour", lane.failed_last_hour, lane.failed_last_hour > 0),
        ),
        h(
          "p",
          { class: "running" },
          "Running: ",
          running
            ? `${running.kind} job ${running.job_id.slice(0, 8)}, for ${elapsed(running.started_at)}`
            : "nothing",
        ),
      );
      const snapshot = JSON.stringify(lane);
      const changed = snapshot !== last;
      last = snapshot;
      return { changed };
    },
    {
      min: 1000,
      max: 10000,
      onError: (error) => replace(body, h("p", { role: "alert" }, error.message)),
    },
  );
  return { node, stop: () => poller.stop() };
}

function stat(label, value, warn) {
  return h(
    "div",
    { class: warn ? "stat warn" : "stat" },
    h("dt", {}, label),
    h("dd", {}, String(value), warn ? " ⚠" : ""),
  );
}

function failuresPanel() {
  const alert = alertBox();
  const list = h("div", {});
  const reload = h("button", { type: "button", class: "secondary" }, "Refresh failures");
  async function load() {
    alert.show("");
    const page = await api.get("/admin/jobs", { status: "failed", limit: 20 });
    replace(
      list,
      page.items.length
        ? table(
            "Failed jobs, newest first",
            ["Job", "Kind", "Owner", "Error", "Finished", "Retry"],
            page.items.map((job) =>
              h(
                "tr",
                { dataset: { jobId: job.job_id } },
                h("td", {}, h("code", {}, job.job_id.slice(0, 8))),
                h("td", {}, job.kind),
                h("td", {}, job.owner),
                h("td", { class: "error-text" }, job.error || "—"),
                h("td", {}, formatTime(job.finished_at || job.updated_at)),
                h(
                  "td",
                  {},
                  job.retried_as
                    ? `Retried as ${job.retried_as.slice(0, 8)}`
                    : h(
                        "button",
                        {
                          type: "button",
                          "aria-label": `Retry job ${job.job_id.slice(0, 8)}`,
                          onclick: async (event) => {
                            event.target.disabled = true;
                            try {
                              const retried = await api.post(
                                `/admin/jobs/${encodeURIComponent(job.job_id)}/retry`,
                              );
                              toast(
                                `Job ${job.job_id.slice(0, 8)} retried as ${retried.job_id.slice(0, 8)}`,
                              );
                              load();
                            } catch (error) {
                              alert.show(error.message);
                              event.target.disabled = false;
                            }
                          },
                        },
                        "Retry",
                      ),
                ),
              ),
            ),
          )
        : h("p", {}, "No failed jobs."),
    );
  }
  reload.addEventListener("click", () => load().catch((error) => alert.show(error.message)));
  load().catch((error) => alert.show(error.message));
  return h(
    "section",
    { "aria-labelledby": "failures" },
    h("h2", { id: "failures" }, "Recent failures"),
    reload,
    alert.node,
    list,
  );
}

function usersPanel() {
  const alert = alertBox();
  const list = h("div", {});
  const more = moreButton(
    "More users",
    () => load(false),
    (error) => alert.show(error.message),
  );
  const pages = api.cursorPages((cursor) => api.get("/users", { limit: 20, cursor }));
  const me = api.currentUser();

  async function change(user, body, message) {
    alert.show("");
    try {
      const updated = await api.put(
        `/users/${encodeURIComponent(user.id)}${body.role ? "/role" : ""}`,
        body,
      );
      pages.update(updated, "id");
      toast(message(updated));
      draw();
    } catch (error) {
      alert.show(error.message);
    }
  }

  function draw() {
    replace(
      list,
      table(
        "Accounts",
        ["Username", "Email", "Role", "Active", "Actions"],
        pages.items().map((user) => {
          const self = me && user.id === me.id;
          const otherRole = user.role === "admin" ? "user" : "admin";
          return h(
            "tr",
            { dataset: { userId: user.id } },
            h("td", {}, user.username),
            h("td", {}, user.email),
            h("td", {}, user.role),
            h("td", {}, user.is_active ? "active" : "deactivated"),
            h(
              "td",
              {},
              self
                ? "(you)"
                : [
                    h(
                      "button",
                      {
                        type: "button",
                        class: "secondary",
                        "aria-label": `Make ${user.username} ${otherRole}`,
                        onclick: () =>
                          change(
                            user,
                            { role: otherRole },
                            (u) => `${u.username} is now ${u.role}`,
                          ),
                      },
                      `Make ${otherRole}`,
                    ),
                    h(
                      "button",
                      {
                        type: "button",
                        class: user.is_active ? "danger" : "secondary",
                        "aria-label": `${user.is_active ? "Deactivate" : "Activate"} ${user.username}`,
                        onclick: () =>
                          change(
                            user,
                            { is_active: !user.is_active },
                            (u) => `${u.username} is ${u.is_active ? "active" : "deactivated"}`,
                          ),
                      },
                      user.is_active ? "Deactivate" : "Activate",
                    ),
                  ],
            ),
          );
        }),
      ),
    );
  }

  async function load(reset) {
    const loaded = await pages.load(reset);
    if (!loaded) return;
    more.hidden = !loaded.more;
    draw();
  }
  load(true).catch((error) => alert.show(error.message));
  return h(
    "section",
    { "aria-labelledby": "users" },
    h("h2", { id: "users" }, "Users"),
    alert.node,
    list,
    more,
  );
}

export function renderAdmin(view) {
  if (!api.isAdmin()) {
    view.append(h("h1", {}, "Admin"), h("p", { role: "alert" }, "This page is for admins only."));
    return undefined;
  }
  const lane = lanePanel();
  view.append(h("h1", {}, "Admin"), lane.node, failuresPanel(), usersPanel());
  return lane.stop;
}
