// The console shell: hash router, live poll, and the hook the bench measures.
import { api } from "./api";
import { audits, emissions, supply } from "./audits";
import { account, accounts, block, home, model, models, provider, providers, tx } from "./explorer";
import { playground } from "./playground";
import { h, set } from "./ui";
import type { View } from "./view";
import { wallet } from "./wallet";

const POLL_MS = 2000;
const hex = "([0-9a-fA-F]{64})";

const routes: [RegExp, (p: string[]) => View, string][] = [
  [/^\/?$/, () => home(), "explorer"],
  [/^\/block\/(\d+)$/, (p) => block(p), "explorer"],
  [new RegExp(`^/tx/${hex}$`), (p) => tx([p[0].toLowerCase()]), "explorer"],
  [/^\/accounts$/, () => accounts(), "accounts"],
  [new RegExp(`^/account/${hex}$`), (p) => account([p[0].toLowerCase()]), "accounts"],
  [/^\/providers$/, () => providers(), "providers"],
  [new RegExp(`^/provider/${hex}$`), (p) => provider([p[0].toLowerCase()]), "providers"],
  [/^\/models$/, () => models(), "models"],
  [new RegExp(`^/model/${hex}$`), (p) => model([p[0].toLowerCase()]), "models"],
  [/^\/audits$/, () => audits(), "audits"],
  [/^\/emissions$/, () => emissions(), "emissions"],
  [/^\/supply$/, () => supply(), "supply"],
  [/^\/playground$/, () => playground(), "playground"],
  [/^\/wallet$/, () => wallet(), "wallet"],
];

const NAV: [string, string, string][] = [
  ["explorer", "#/", "Explorer"],
  ["accounts", "#/accounts", "Accounts"],
  ["providers", "#/providers", "Providers"],
  ["models", "#/models", "Models"],
  ["audits", "#/audits", "Audits"],
  ["emissions", "#/emissions", "Emissions"],
  ["supply", "#/supply", "Supply"],
  ["playground", "#/playground", "Playground"],
  ["wallet", "#/wallet", "Wallet"],
];

const main = document.getElementById("main")!;
const navList = document.getElementById("nav-list")!;
const live = document.getElementById("live")!;
for (const [key, href, label] of NAV) navList.appendChild(h("li", null, h("a", { href, "data-nav": key }, label)));

let current: View | null = null;
let busy: Promise<number> | null = null;
let generation = 0;

function notFound(path: string): View {
  return { title: "Not found", el: h("section", { class: "view" }, h("h1", { tabindex: "-1" }, "Not found"), h("p", null, `No page ${path}. `, h("a", { href: "#/" }, "Back to the explorer"))), update: async () => {} };
}

function route() {
  const path = decodeURIComponent(location.hash.replace(/^#/, "")) || "/";
  let view: View | null = null;
  let section = "";
  for (const [re, make, sec] of routes) {
    const m = re.exec(path);
    if (m) {
      view = make(m.slice(1));
      section = sec;
      break;
    }
  }
  view ??= notFound(path);
  current?.destroy?.();
  current = view;
  generation++;
  set(main, view.el);
  document.title = `${view.title} · agora console`;
  for (const a of navList.querySelectorAll("a")) {
    if (a.dataset.nav === section) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const h1 = view.el.querySelector("h1");
  if (h1 && document.activeElement !== document.body) h1.focus({ preventScroll: true });
  busy = null;
  void tick();
}

/** One live update of the current view; resolves to its duration in ms. */
function tick(): Promise<number> {
  if (busy) return busy;
  const view = current;
  const gen = generation;
  if (!view) return Promise.resolve(0);
  const run = (async () => {
    const t0 = performance.now();
    performance.mark("agora:update:start");
    try {
      await view.update();
    } catch (e) {
      // A view must never throw to the console; show it instead.
      if (gen === generation) main.prepend(h("p", { class: "unavailable", role: "alert" }, `Update failed: ${(e as Error).message}`));
    }
    performance.mark("agora:update:end");
    performance.measure("agora:update", "agora:update:start", "agora:update:end");
    return performance.now() - t0;
  })();
  busy = run;
  void run.then(() => {
    if (busy === run) busy = null;
  });
  return run;
}

async function pollHead() {
  const r = await api.head();
  set(live, r.ok ? `live · ${r.data.chain_id} · height ${r.data.height}` : "chain unreachable");
}

window.addEventListener("hashchange", route);
setInterval(() => {
  if (document.visibilityState === "visible") {
    void tick();
    void pollHead();
  }
}, POLL_MS);
(window as any).agoraConsole = { update: tick };
route();
void pollHead();
