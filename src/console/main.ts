// The Proxist web console (served by the node at /): a hash router over four
// pages. Without a token kept for this tab every page goes to the login first.
import "./style.css";
import { token } from "./api.js";
import { h } from "./dom.js";
import { clusterPage } from "./pages/cluster.js";
import { livePage } from "./pages/live.js";
import { loginPage } from "./pages/login.js";
import { queryPage } from "./pages/query.js";

const PAGES: Record<string, { title: string; mount: (root: HTMLElement) => () => void }> = {
  query: { title: "Query", mount: queryPage },
  live: { title: "Live", mount: livePage },
  cluster: { title: "Cluster", mount: clusterPage },
};

const nav = h("nav");
const who = h("div.who");
const main = h("main#page");
document.body.replaceChildren(h("header", {}, h("div.brand", {}, "PROXIST", h("span", {}, " console")), nav, who), main);

let unmount: () => void = () => {};

function route(): void {
  unmount();
  const name = location.hash.replace(/^#\/?/, "") || "query";
  if (!token.known() || name === "login") {
    nav.replaceChildren();
    who.replaceChildren();
    unmount = loginPage(main, () => {
      location.hash = name === "login" ? "#/query" : `#/${name}`;
      route();
    });
    return;
  }
  const page = PAGES[name] ?? PAGES.query!;
  nav.replaceChildren(...Object.entries(PAGES).map(([k, p]) => h(`a${p === page ? ".active" : ""}`, { href: `#/${k}`, id: `nav-${k}` }, p.title)));
  who.replaceChildren(
    h("span", {}, token.get() ? "signed in with a token" : "no token (open node)"),
    h("button#logout", { onclick: () => (token.clear(), (location.hash = "#/login"), route()) }, "Sign out"),
  );
  document.title = `${page.title} · Proxist`;
  unmount = page.mount(main);
}

window.addEventListener("hashchange", route);
route();
