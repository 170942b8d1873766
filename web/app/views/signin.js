// Sign in, or register and then sign in.

import * as api from "../api.js";
import { alertBox, field, h, onSubmit } from "../dom.js";

export function renderSignIn(view) {
  let registering = false;

  function draw() {
    const alert = alertBox();
    const email = field(
      "Email",
      h("input", { type: "email", autocomplete: "email", required: true }),
    );
    const username = field(
      "Username",
      h("input", { type: "text", autocomplete: "username", required: true, maxlength: "100" }),
    );
    const password = field(
      "Password",
      h("input", {
        type: "password",
        autocomplete: registering ? "new-password" : "current-password",
        required: true,
      }),
    );
    const submit = h("button", { type: "submit" }, registering ? "Register" : "Sign in");
    const form = h(
      "form",
      {
        class: "card narrow",
        onsubmit: onSubmit(submit, async () => {
          alert.show("");
          try {
            if (registering) {
              await api.register(email.input.value, username.input.value, password.input.value);
            } else {
              await api.signIn(username.input.value, password.input.value);
            }
          } catch (error) {
            alert.show(error.message);
          }
        }),
      },
      registering ? email.wrap : null,
      username.wrap,
      password.wrap,
      alert.node,
      submit,
    );
    const toggle = h(
      "button",
      {
        type: "button",
        class: "link",
        onclick: () => {
          registering = !registering;
          draw();
          view.querySelector("input").focus();
        },
      },
      registering ? "I have an account: sign in" : "New here? Register",
    );
    view.replaceChildren(
      h("h1", {}, registering ? "Register" : "Sign in"),
      h("p", {}, "The ordo console: tasks, documents, cases, the catalog and the data feed."),
      form,
      h("p", {}, toggle),
    );
  }

  draw();
}
