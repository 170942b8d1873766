// Submit a text task and follow it in the list of your jobs.

import * as api from "../api.js";
import { alertBox, field, h, onSubmit, select, showError, toast } from "../dom.js";
import { jobList } from "./jobs.js";

const TYPES = [
  ["reverse", "reverse"],
  ["swap_pairs", "swap_pairs"],
  ["repeat_by_position", "repeat_by_position"],
];

export function renderTasks(view) {
  const type = field("Task type", select(TYPES, "reverse"));
  const data = field(
    "Data",
    h("input", { type: "text", autocomplete: "off" }),
    "The text the task works on: reverse it, swap its pairs, or repeat each character by its position.",
  );
  const alert = alertBox();
  const jobs = jobList();
  const submit = h("button", { type: "submit" }, "Submit");
  const form = h(
    "form",
    {
      class: "card",
      onsubmit: onSubmit(submit, async () => {
        alert.show("");
        data.setError("");
        try {
          const accepted = await api.post("/tasks", {
            type: type.input.value,
            data: data.input.value,
          });
          toast(`Task ${accepted.task_id.slice(0, 8)} accepted`);
          data.input.value = "";
          jobs.refresh();
        } catch (error) {
          showError(error, { data }, alert);
        }
      }),
    },
    h("div", { class: "row" }, type.wrap, data.wrap),
    alert.node,
    submit,
  );
  view.append(h("h1", {}, "Tasks"), form, h("h2", {}, "Your jobs"), jobs.node);
  return jobs.stop;
}
