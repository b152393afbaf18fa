// Login: an API token (pxctl token create --tenant T --role reader), checked
// against the node before it is kept for this tab. An empty token works with a
// node that checks none.
import { checkToken, token } from "../api.js";
import { h } from "../dom.js";

export function loginPage(root: HTMLElement, done: () => void): () => void {
  const input = h("input#token", { type: "password", placeholder: "API token", autocomplete: "off", spellcheck: false });
  const error = h("div#login-error");
  const go = h("button.primary#login", { type: "submit" }, "Sign in");
  const form = h(
    "form.card.login",
    {
      onsubmit: (e: Event) => {
        e.preventDefault();
        go.disabled = true;
        error.replaceChildren();
        const t = input.value.trim();
        checkToken(t).then(
          () => {
            token.set(t);
            done();
          },
          (err: unknown) => {
            go.disabled = false;
            error.replaceChildren(h("div.error", {}, `${(err as Error).message}${t === "" ? "\nThis node checks tokens: paste one." : ""}`));
          },
        );
      },
    },
    h("h1", {}, "Sign in to Proxist"),
    h("p.note", {}, "Paste an API token of your tenant (a reader can query; ", h("code", {}, "./proxist pxctl token create --tenant default --role reader"), "). It is kept for this browser tab only (sessionStorage)."),
    input,
    h("div.row", {}, go, h("span.note", {}, "Leave it empty for a node that checks no tokens.")),
    error,
  );
  root.replaceChildren(form);
  input.focus();
  return () => {};
}
