// Upload an invoice or a contract (a JSON file, or pasted), and follow its progress to 100.

import * as api from "../api.js";
import { alertBox, badge, field, h, onSubmit, replace, select } from "../dom.js";
import { poll } from "../poll.js";
import { showResult } from "./jobs.js";

const MAX_FILE_BYTES = 256 * 1024;
const EXAMPLE = JSON.stringify(
  { content: { number: "INV-1001", amount: 1250.5, vendor: "Acme Ltd", currency: "EUR" } },
  null,
  2,
);

// A document is its `content`, with optional `metaData`; a bare object is the content itself.
function parseDocument(text) {
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new Error(`The document is not valid JSON: ${error.message}`);
  }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new Error("The document must be a JSON object");
  }
  if ("content" in parsed) return { content: parsed.content, metaData: parsed.metaData ?? null };
  return { content: parsed, metaData: null };
}

function tracker(jobId) {
  const bar = h("progress", { max: "100", value: "0", "aria-label": "Progress" });
  const label = h("span", { class: "progress-label" }, "0%");
  const status = h("p", {}, "Status: ", badge("pending"));
  const outcome = h("div", {});
  const node = h(
    "section",
    { class: "card", "aria-label": `Document job ${jobId.slice(0, 8)}` },
    h("h2", {}, `Job ${jobId.slice(0, 8)}`),
    status,
    h("div", { class: "progress" }, bar, label),
    outcome,
  );
  const poller = poll(
    async () => {
      const job = await api.get(`/status/${encodeURIComponent(jobId)}`);
      bar.value = job.progress;
      label.textContent = `${job.progress}%`;
      replace(status, "Status: ", badge(job.status));
      if (job.status === "completed") {
        replace(
          outcome,
          h("h3", {}, "Result"),
          h("pre", { class: "result" }, showResult(job.result)),
        );
      } else if (job.status === "failed") {
        replace(outcome, h("p", { class: "error-text", role: "alert" }, `Error: ${job.error}`));
      }
      return { changed: true, done: job.status === "completed" || job.status === "failed" };
    },
    {
      onError: (error) =>
        replace(outcome, h("p", { class: "error-text" }, `Error: ${error.message}`)),
    },
  );
  return { node, stop: () => poller.stop() };
}

export function renderDocuments(view) {
  const type = field(
    "Document type",
    select(
      [
        ["invoice", "invoice"],
        ["contract", "contract"],
      ],
      "invoice",
    ),
  );
  const file = field("JSON file", h("input", { type: "file", accept: ".json,application/json" }));
  const pasted = field(
    "Document JSON",
    h("textarea", { rows: "8", spellcheck: false }),
    "Paste the document, or choose a file above. Example: " + EXAMPLE.replace(/\s+/g, " "),
  );
  const alert = alertBox();
  const trackers = h("div", { class: "trackers" });
  const stops = [];
  file.input.addEventListener("change", async () => {
    const chosen = file.input.files[0];
    file.setError("");
    if (!chosen) return;
    if (chosen.size > MAX_FILE_BYTES) {
      file.setError(`The file is ${Math.ceil(chosen.size / 1024)} KB; the limit is 256 KB`);
      return;
    }
    pasted.input.value = await chosen.text();
  });
  const submit = h("button", { type: "submit" }, "Upload");
  const form = h(
    "form",
    {
      class: "card",
      onsubmit: onSubmit(submit, async () => {
        alert.show("");
        pasted.setError("");
        let document;
        try {
          document = parseDocument(pasted.input.value);
        } catch (error) {
          pasted.setError(error.message);
          pasted.input.focus();
          return;
        }
        try {
          const accepted = await api.post("/upload", { type: type.input.value, ...document });
          const follow = tracker(accepted.job_id);
          stops.push(follow.stop);
          trackers.prepend(follow.node);
        } catch (error) {
          alert.show(error.message);
        }
      }),
    },
    type.wrap,
    file.wrap,
    pasted.wrap,
    alert.node,
    submit,
  );
  view.append(h("h1", {}, "Documents"), form, trackers);
  return () => stops.forEach((stop) => stop());
}
