// Seed 004's flow: choose a medical record and the guidelines, Continue creates the case, and
// its review appears as it moves from submitted to processing to complete.

import * as api from "../api.js";
import {
  alertBox,
  badge,
  field,
  formatTime,
  h,
  moreButton,
  replace,
  select,
  table,
} from "../dom.js";
import { poll } from "../poll.js";

const ACCEPT = ".pdf,.txt,application/pdf,text/plain";
const MAX_FILE_BYTES = 20 * 1024 * 1024;
const STATUSES = [
  ["", "All"],
  ["submitted", "submitted"],
  ["processing", "processing"],
  ["complete", "complete"],
];

// A button that opens a file chooser; the file stays on this device, only its name is used.
function filePicker(label) {
  const input = h("input", { type: "file", accept: ACCEPT, hidden: true, tabindex: "-1" });
  const chosen = h("span", { class: "chosen", "aria-live": "polite" }, "No file chosen");
  const error = h("span", { class: "field-error" });
  const picker = {
    file: null,
    node: null,
    onchange: () => {},
  };
  const button = h(
    "button",
    { type: "button", class: "secondary", onclick: () => input.click() },
    label,
  );
  input.addEventListener("change", () => {
    const file = input.files[0] || null;
    error.textContent = "";
    picker.file = null;
    if (
      file &&
      !/\.(pdf|txt)$/i.test(file.name) &&
      !/^(application\/pdf|text\/plain)$/.test(file.type)
    ) {
      error.textContent = `Error: ${file.name} is not a PDF or text file`;
    } else if (file && file.size > MAX_FILE_BYTES) {
      error.textContent = `Error: ${file.name} is over 20 MB`;
    } else {
      picker.file = file;
    }
    chosen.textContent = picker.file ? `${picker.file.name} selected` : "No file chosen";
    picker.onchange();
  });
  picker.node = h("div", { class: "picker" }, button, input, chosen, error);
  return picker;
}

function notesFor(record, guidelines) {
  return [
    `Medical record: ${record.name} (${Math.ceil(record.size / 1024)} KB)`,
    `Guidelines: ${guidelines.name} (${Math.ceil(guidelines.size / 1024)} KB)`,
  ].join("\n");
}

function caseList() {
  const filter = field("Status filter", select(STATUSES, ""));
  const list = h("div", {});
  const failed = (error) => replace(list, h("p", { role: "alert" }, error.message));
  const more = moreButton("More cases", () => load(false), failed);
  const pages = api.cursorPages((cursor) =>
    api.get("/cases", { status: filter.input.value, limit: 10, cursor }),
  );
  async function load(reset) {
    const loaded = await pages.load(reset);
    if (!loaded) return;
    const rows = loaded.items;
    more.hidden = !loaded.more;
    replace(
      list,
      rows.length
        ? table(
            "Cases, newest first",
            ["Case", "Procedure", "Status", "Created"],
            rows.map((item) =>
              h(
                "tr",
                {},
                h(
                  "td",
                  {},
                  h("a", { href: `#/cases/${encodeURIComponent(item.case_id)}` }, item.case_id),
                ),
                h("td", {}, item.procedure_name),
                h("td", {}, badge(item.status)),
                h("td", {}, formatTime(item.created_at)),
              ),
            ),
          )
        : h("p", {}, "No cases."),
    );
  }
  filter.input.addEventListener("change", () => load(true).catch(failed));
  load(true).catch(failed);
  return h(
    "section",
    { "aria-labelledby": "cases-list" },
    h("h2", { id: "cases-list" }, "Your cases"),
    filter.wrap,
    list,
    more,
  );
}

export function renderCases(view) {
  const record = filePicker("Upload medical record");
  const guidelines = filePicker("Upload guidelines");
  const alert = alertBox();
  const proceed = h("button", { type: "button", disabled: true }, "Continue");
  const ready = () => {
    proceed.disabled = !(record.file && guidelines.file);
  };
  record.onchange = ready;
  guidelines.onchange = ready;
  proceed.addEventListener("click", async () => {
    proceed.disabled = true;
    alert.show("");
    try {
      const created = await api.post("/cases", { notes: notesFor(record.file, guidelines.file) });
      window.location.hash = `#/cases/${encodeURIComponent(created.case_id)}`;
    } catch (error) {
      alert.show(error.message);
      ready();
    }
  });
  view.append(
    h("h1", {}, "Cases"),
    h(
      "section",
      { class: "card", "aria-labelledby": "new-case" },
      h("h2", { id: "new-case" }, "New case"),
      h(
        "p",
        { class: "hint" },
        "Your files stay on this device: the case records their names only.",
      ),
      record.node,
      guidelines.node,
      alert.node,
      proceed,
    ),
    caseList(),
  );
}

function renderStep(step, index) {
  return h(
    "li",
    { class: "step" },
    h("h3", {}, `Step ${index + 1}: ${step.question}`),
    h(
      "ul",
      { class: "options", "aria-label": "Options" },
      (step.options || []).map((option) =>
        h(
          "li",
          { class: option.selected ? "selected" : "" },
          option.selected ? "✔ " : "○ ",
          option.text,
          option.selected ? h("strong", {}, " (selected)") : null,
        ),
      ),
    ),
    h("h4", {}, "Reasoning"),
    h("p", { class: "reasoning" }, step.reasoning),
    h("h4", {}, "Decision"),
    h(
      "p",
      { class: "decision" },
      step.decision,
      step.is_met ? " — criteria met" : " — criteria not met",
    ),
    (step.evidence || []).length
      ? [
          h("h4", {}, "Evidence"),
          h(
            "ul",
            { class: "evidence" },
            step.evidence.map((item) =>
              h(
                "li",
                {},
                h("q", {}, item.content),
                h(
                  "span",
                  { class: "source" },
                  ` ${item.pdf_name}, page ${item.page_number}, ${formatTime(item.event_datetime)}`,
                ),
              ),
            ),
          ),
        ]
      : null,
  );
}

export function renderCase(view, caseId) {
  const status = h("p", { class: "case-status" }, "Status: loading");
  const body = h("div", {});
  const alert = alertBox();
  let lastStatus = "";
  view.append(
    h("p", {}, h("a", { href: "#/cases" }, "← All cases")),
    h("h1", {}, `Case ${caseId}`),
    status,
    alert.node,
    body,
  );
  const poller = poll(
    async () => {
      const item = await api.get(`/cases/${encodeURIComponent(caseId)}`);
      alert.show("");
      replace(status, "Status: ", badge(item.status));
      replace(
        body,
        h(
          "dl",
          { class: "facts" },
          h("dt", {}, "Procedure"),
          h("dd", {}, item.procedure_name),
          h("dt", {}, "CPT codes"),
          h("dd", {}, (item.cpt_codes || []).join(", ")),
          h("dt", {}, "Created"),
          h("dd", {}, formatTime(item.created_at)),
        ),
        item.status === "submitted" ? h("p", {}, "The case is waiting for review.") : null,
        item.summary ? [h("h2", {}, "Summary"), h("p", { class: "summary" }, item.summary)] : null,
        item.status === "complete"
          ? [
              h(
                "p",
                { class: "verdict" },
                item.is_met ? "Outcome: criteria met" : "Outcome: criteria not met",
              ),
              h("h2", {}, "Review steps"),
              h("ol", { class: "steps" }, (item.steps || []).map(renderStep)),
            ]
          : null,
      );
      const changed = item.status !== lastStatus;
      lastStatus = item.status;
      return { changed, done: item.status === "complete" };
    },
    { min: 500, max: 5000, onError: (error) => alert.show(error.message) },
  );
  return () => poller.stop();
}
