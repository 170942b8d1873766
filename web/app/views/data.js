// The aggregated posts, filtered by user and paged, and "Fetch now" through the lane.

import * as api from "../api.js";
import { alertBox, badge, field, h, moreButton, replace, showError, table } from "../dom.js";
import { poll } from "../poll.js";

function fetchOutcome(job) {
  if (job.status === "completed") {
    if (job.outcome === "cached") return "Data fetched recently; using the stored data.";
    return `Fetched ${job.fetched}: ${job.created} new, ${job.updated} updated, ${job.skipped} unchanged.`;
  }
  if (job.status === "failed") return `Error: ${job.error}`;
  return "Waiting for the lane…";
}

export function renderData(view) {
  const userId = field(
    "User ID",
    h("input", { type: "number", min: "1", step: "1" }),
    "Leave empty for every user.",
  );
  const alert = alertBox();
  const list = h("div", { "aria-live": "polite" });
  const more = moreButton(
    "More posts",
    () => load(false),
    (error) => alert.show(error.message),
  );
  const fetchNow = h("button", { type: "button" }, "Fetch now");
  const fetchStatus = h("div", { class: "fetch-status", role: "status" });
  let follow = null;
  const pages = api.cursorPages((cursor) =>
    api.get("/data", { user_id: userId.input.value, limit: 20, cursor }),
  );

  async function load(reset) {
    alert.show("");
    userId.setError("");
    let loaded;
    try {
      loaded = await pages.load(reset);
    } catch (error) {
      showError(error, { user_id: userId }, alert);
      return;
    }
    if (!loaded) return; // a newer filter's answer wins
    const posts = loaded.items;
    more.hidden = !loaded.more;
    replace(
      list,
      posts.length
        ? table(
            "Posts",
            ["ID", "User", "Title", "Body"],
            posts.map((post) =>
              h(
                "tr",
                {},
                h("td", {}, String(post.id)),
                h("td", {}, String(post.user_id)),
                h("td", {}, post.title),
                h("td", {}, post.body),
              ),
            ),
          )
        : h("p", {}, "No posts yet: press Fetch now."),
    );
  }

  fetchNow.addEventListener("click", async () => {
    fetchNow.disabled = true;
    if (follow) follow.stop();
    try {
      const queued = await api.post("/fetch?mode=task");
      replace(fetchStatus, `Fetch job ${queued.job_id.slice(0, 8)}: `, badge("pending"));
      follow = poll(
        async () => {
          const job = await api.get(`/fetch/status/${encodeURIComponent(queued.job_id)}`);
          const done = job.status === "completed" || job.status === "failed";
          replace(
            fetchStatus,
            `Fetch job ${job.job_id.slice(0, 8)}: `,
            badge(job.status),
            " ",
            fetchOutcome(job),
          );
          if (done) {
            fetchNow.disabled = false;
            if (job.status === "completed") load(true);
          }
          return { done };
        },
        { onError: (error) => replace(fetchStatus, `Error: ${error.message}`) },
      );
    } catch (error) {
      replace(fetchStatus, `Error: ${error.message}`);
      fetchNow.disabled = false;
    }
  });

  view.append(
    h("h1", {}, "Data"),
    h(
      "div",
      { class: "card" },
      h("p", {}, "Posts aggregated from the source, on a schedule and on demand."),
      fetchNow,
      fetchStatus,
    ),
    h(
      "form",
      {
        class: "card filters",
        onsubmit: (event) => {
          event.preventDefault();
          load(true);
        },
      },
      userId.wrap,
      h("button", { type: "submit" }, "Filter"),
    ),
    alert.node,
    list,
    more,
  );
  load(true);
  return () => follow && follow.stop();
}
