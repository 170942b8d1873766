// The signed-in user's jobs, newest first, kept live while any of them is unfinished.

import * as api from "../api.js";
import { alertBox, badge, elapsed, h, replace, table } from "../dom.js";
import { poll } from "../poll.js";

const FINAL = new Set(["completed", "failed"]);

export function showResult(result) {
  if (result === null || result === undefined) return "";
  return typeof result === "string" ? result : JSON.stringify(result, null, 2);
}

function outcome(job) {
  if (job.status === "failed")
    return h("span", { class: "error-text" }, `Error: ${job.error || "failed"}`);
  if (job.status === "completed") return h("pre", { class: "result" }, showResult(job.result));
  if (job.status === "pending" && job.queue_position !== null && job.queue_position !== undefined) {
    return `Queue position ${job.queue_position}`;
  }
  if (job.status === "processing" && job.progress) return `${job.progress}% done`;
  return "";
}

function row(job) {
  const finished = FINAL.has(job.status) ? job.finished_at || job.updated_at : null;
  return h(
    "tr",
    { dataset: { jobId: job.job_id, status: job.status } },
    h("td", {}, h("code", {}, job.job_id.slice(0, 8))),
    h("td", {}, job.kind || "—"),
    h("td", {}, badge(job.status)),
    h("td", {}, job.status === "pending" ? (job.queue_position ?? "—") : "—"),
    h("td", {}, elapsed(job.created_at, finished)),
    h("td", {}, outcome(job)),
  );
}

// Returns {node, refresh, stop}; refresh() after a submit polls again at once.
export function jobList() {
  const node = h("div", { class: "jobs", "aria-live": "polite" });
  const alert = alertBox();
  let last = "";
  const poller = poll(
    async () => {
      const page = await api.get("/jobs", { limit: 20 });
      alert.show("");
      const items = page.items || [];
      const snapshot = JSON.stringify(items.map((job) => [job.job_id, job.status, job.progress]));
      replace(
        node,
        items.length
          ? table(
              "Newest first",
              ["Job", "Kind", "Status", "Queue position", "Elapsed", "Result"],
              items.map(row),
            )
          : h("p", {}, "No jobs yet."),
      );
      const changed = snapshot !== last;
      last = snapshot;
      return { changed, done: items.every((job) => FINAL.has(job.status)) };
    },
    { onError: (error) => alert.show(error.message) },
  );
  return {
    node: h("div", {}, alert.node, node),
    refresh: () => poller.wake(),
    stop: () => poller.stop(),
  };
}
