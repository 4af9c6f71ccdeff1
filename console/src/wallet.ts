// Wallet: an ed25519 key that lives in this page only (memory, and
// localStorage if asked); transfers signed here; self-service API keys.
import { api, apiKey } from "./api";
import { fromHex, isHex32, toHex } from "./bytes";
import { publicKey, randomSeed } from "./crypto";
import type { Json } from "./json";
import { signKeyRequest, signTransfer, signWithdrawal } from "./tx";
import { acct, amount, badge, blk, h, kv, nextId, set, txl, unavailable } from "./ui";
import type { View } from "./view";

const SEED_STORE = "agora.wallet.seed";
const KEYS_STORE = "agora.wallet.keys";

interface IssuedKey {
  key: string;
  id: string;
  account: string;
  owner: string;
}

let seed: Uint8Array | null = null;
let issued: IssuedKey[] = [];
try {
  const s = localStorage.getItem(SEED_STORE);
  if (s && isHex32(s)) seed = fromHex(s);
  issued = JSON.parse(localStorage.getItem(KEYS_STORE) ?? "[]");
} catch {
  /* storage unavailable */
}

function store(key: string, value: string | null) {
  try {
    if (value === null) localStorage.removeItem(key);
    else localStorage.setItem(key, value);
  } catch {
    /* storage unavailable */
  }
}

function field(label: string, control: HTMLElement & { id: string }) {
  return h("div", { class: "field" }, h("label", { for: control.id }, label), control);
}

/** Sign and submit a transfer from the wallet; resolves to the tx id or an error. */
async function transfer(to: string, amt: bigint): Promise<{ id?: string; error?: string }> {
  if (!seed) return { error: "no key" };
  const from = toHex(publicKey(seed));
  const [head, acc] = await Promise.all([api.head(), api.account(from)]);
  if (!head.ok) return { error: `chain head: ${head.message}` };
  if (!acc.ok) return { error: `account: ${acc.message}` };
  const signed = signTransfer({ chainId: head.data.chain_id, nonce: BigInt(acc.data.next_nonce ?? acc.data.nonce), to, amount: amt }, seed);
  const r = await api.submitTx(signed.hex);
  if (!r.ok) return { error: r.message };
  return { id: r.data.id };
}

export function wallet(): View {
  const keyBox = h("div", { id: "wallet-key" });
  const balance = h("div", { id: "wallet-balance" });
  const seedIn = h("input", { id: "wallet-seed", type: "password", autocomplete: "off", spellcheck: "false", placeholder: "64 hex characters" });
  const remember = h("input", { id: "wallet-remember", type: "checkbox" });
  remember.checked = (() => {
    try {
      return !!localStorage.getItem(SEED_STORE);
    } catch {
      return false;
    }
  })();
  const keyMsg = h("p", { role: "status", id: "wallet-key-msg" });

  const setSeed = (s: Uint8Array | null) => {
    seed = s;
    store(SEED_STORE, s && remember.checked ? toHex(s) : null);
    renderKey();
    void refresh();
  };
  remember.addEventListener("change", () => store(SEED_STORE, seed && remember.checked ? toHex(seed) : null));

  const keyForm = h(
    "form",
    {
      class: "stack",
      "aria-label": "Wallet key",
      onsubmit: (e: Event) => {
        e.preventDefault();
        try {
          setSeed(fromHex(seedIn.value, 32));
          seedIn.value = "";
          keyMsg.textContent = "Key imported.";
        } catch (err) {
          keyMsg.textContent = `Not a seed: ${(err as Error).message}`;
        }
      },
    },
    field("Import seed (hex, 32 bytes)", seedIn),
    h(
      "div",
      { class: "row" },
      h("button", { type: "submit", id: "wallet-import" }, "Import"),
      h("button", { type: "button", id: "wallet-generate", onclick: () => ((keyMsg.textContent = "New key generated."), setSeed(randomSeed())) }, "Generate new key"),
      h("button", { type: "button", onclick: () => ((keyMsg.textContent = "Key forgotten."), setSeed(null)) }, "Forget key"),
    ),
    h("div", { class: "check" }, remember, h("label", { for: remember.id }, "Remember the seed in this browser (localStorage)")),
    keyMsg,
  );

  function renderKey() {
    if (!seed) return set(keyBox, h("p", null, "No key yet: generate or import one. The seed never leaves this page."));
    const id = toHex(publicKey(seed));
    set(keyBox, kv([["Account", [h("code", { id: "wallet-account", class: "wrap" }, id), " ", acct(id)]]]));
  }

  // Transfer.
  const toIn = h("input", { id: "tx-to", autocomplete: "off", spellcheck: "false", placeholder: "recipient account hex" });
  const amtIn = h("input", { id: "tx-amount", type: "number", min: 1, step: 1, value: 1000 });
  const txMsg = h("div", { id: "tx-result", role: "status" });
  const txForm = h(
    "form",
    {
      class: "stack",
      "aria-label": "Transfer",
      onsubmit: async (e: Event) => {
        e.preventDefault();
        const to = toIn.value.trim().toLowerCase();
        if (!isHex32(to)) return set(txMsg, "The recipient must be 64 hex characters.");
        let amt: bigint;
        try {
          amt = BigInt(amtIn.value);
        } catch {
          return set(txMsg, "The amount must be a whole number.");
        }
        set(txMsg, "Signing and submitting…");
        const r = await transfer(to, amt);
        if (!r.id) return set(txMsg, `Refused: ${r.error}`);
        const state = h("span", { id: "tx-state" }, badge("pending", "warn"));
        set(txMsg, "Submitted: ", txl(r.id), " to ", acct(to), " ", state);
        void refresh();
        // Follow it until the chain commits or drops it (bounded).
        for (let i = 0; i < 30; i++) {
          await new Promise((res) => setTimeout(res, 1000));
          const st = await api.tx(r.id);
          if (!st.ok || st.data.status === "pending") continue;
          set(state, st.data.status === "committed" ? [badge("committed", "ok"), " in block ", blk(st.data.height)] : badge(`rejected: ${st.data.error}`, "bad"));
          void refresh();
          break;
        }
      },
    },
    h("div", { class: "row" }, field("To", toIn), field("Amount (base units)", amtIn)),
    h("div", { class: "row" }, h("button", { type: "submit", id: "tx-send", class: "primary" }, "Sign and send")),
    txMsg,
  );

  // API keys.
  const nameIn = h("input", { id: "key-name", value: "console", autocomplete: "off" });
  const totalIn = h("input", { id: "key-total", type: "number", min: 0, step: 1, placeholder: "no limit" });
  const dailyIn = h("input", { id: "key-daily", type: "number", min: 0, step: 1, placeholder: "no limit" });
  const keyResult = h("div", { id: "key-result", role: "status" });
  const keysBox = h("div", { id: "key-list" });
  const keyReqForm = h(
    "form",
    {
      class: "stack",
      "aria-label": "Create API key",
      onsubmit: async (e: Event) => {
        e.preventDefault();
        if (!seed) return set(keyResult, "Generate or import a key first.");
        const owner = toHex(publicKey(seed));
        const { request, signature } = signKeyRequest(
          {
            owner,
            name: nameIn.value,
            issued_at_ms: Date.now(),
            total: totalIn.value ? Number(totalIn.value) : undefined,
            daily: dailyIn.value ? Number(dailyIn.value) : undefined,
          },
          seed,
        );
        set(keyResult, "Requesting…");
        const r = await api.createKey(request, signature);
        if (!r.ok) return set(keyResult, unavailable("API key", r.message));
        issued.unshift(r.data);
        if (remember.checked) store(KEYS_STORE, JSON.stringify(issued));
        set(keyResult, "Key created: ", h("code", { id: "key-created" }, r.data.key));
        void refreshKeys();
      },
    },
    h("div", { class: "row" }, field("Key name", nameIn), field("Total budget (base units)", totalIn), field("Daily budget", dailyIn)),
    h("div", { class: "row" }, h("button", { type: "submit", id: "key-create", class: "primary" }, "Create API key")),
    keyResult,
  );

  // One card per issued key, built once; live refresh updates its values in place
  // (so typing in its form is never interrupted).
  const cards = new Map<string, { el: HTMLElement; update: () => Promise<void> }>();
  function card(k: IssuedKey, i: number) {
    const fundIn = h("input", { id: `fund-${i}`, type: "number", min: 1, step: 1, value: 10000 });
    const fundMsg = h("span", { role: "status", id: `fund-msg-${i}` });
    const info = h("div");
    const el = h(
      "article",
      { class: "keycard", "aria-label": `API key ${k.id}` },
      h("h3", null, `Key ${k.id}`),
      info,
      h(
        "form",
        {
          class: "inline",
          "aria-label": `Fund key ${k.id}`,
          onsubmit: async (e: Event) => {
            e.preventDefault();
            fundMsg.textContent = "Funding…";
            const r = await transfer(k.account, BigInt(fundIn.value || "0"));
            fundMsg.textContent = r.id ? `Submitted ${r.id.slice(0, 12)}…` : `Refused: ${r.error}`;
          },
        },
        h("label", { for: fundIn.id }, "Fund amount"),
        fundIn,
        h("button", { type: "submit" }, "Fund"),
        h(
          "button",
          {
            type: "button",
            id: `withdraw-${i}`,
            onclick: async () => {
              if (!seed) return void (fundMsg.textContent = "Generate or import a key first.");
              const w = signWithdrawal({ owner: toHex(publicKey(seed)), amount: BigInt(fundIn.value || "0"), issued_at_ms: Date.now() }, seed);
              fundMsg.textContent = "Withdrawing…";
              const r = await api.withdraw(w.request, w.signature);
              fundMsg.textContent = r.ok ? `Withdrawal ${r.data.tx.slice(0, 12)}… submitted` : `Refused: ${r.message}`;
            },
          },
          "Withdraw",
        ),
        h("button", { type: "button", onclick: () => ((fundMsg.textContent = "Playground will use this key."), apiKey.set(k.key)) }, "Use in playground"),
        fundMsg,
      ),
    );
    const update = async () => {
      const [u, a] = await Promise.all([api.usage(k.key), api.account(k.account)]);
      const rec = u.ok ? (u.data.key as { [k: string]: any }) : null;
      const rows = u.ok ? (u.data.data as { [k: string]: Json }[]) : [];
      set(
        info,
        kv([
          ["Key", h("code", { class: "wrap" }, k.key)],
          ["Spends from", acct(k.account)],
          ["Account balance", a.ok ? amount(a.data.balance) : "—"],
          ["Spent", h("span", { class: "key-spent" }, rec ? amount(rec.spend?.total ?? 0) : u.ok ? "—" : `unavailable (${u.message})`)],
          ["Limits", rec ? Object.entries(rec.limits ?? {}).filter(([, v]) => v !== null).map(([kk, v]) => `${kk} ${v}`).join(", ") || "none" : "—"],
          ["Requests", h("span", { class: "key-requests" }, String(rows.reduce((s, r) => s + Number(r.requests ?? 0), 0)))],
        ]),
      );
    };
    return { el, update };
  }

  async function refreshKeys() {
    const shown = issued.slice(0, 5);
    shown.forEach((k, i) => {
      if (!cards.has(k.key)) cards.set(k.key, card(k, cards.size + i));
    });
    const els = shown.map((k) => cards.get(k.key)!.el);
    if (els.length !== keysBox.children.length || els.some((e, i) => keysBox.children[i] !== e)) set(keysBox, ...els);
    await Promise.all(shown.map((k) => cards.get(k.key)!.update()));
  }

  async function refresh() {
    if (!seed) return set(balance);
    const id = toHex(publicKey(seed));
    const a = await api.account(id);
    if (!a.ok) return set(balance, unavailable("Balance", a.message));
    set(balance, kv([["Balance", h("span", { id: "wallet-balance-value" }, amount(a.data.balance))], ["Next nonce", String(a.data.next_nonce ?? a.data.nonce)]]));
  }

  renderKey();
  const el = h(
    "section",
    { class: "view" },
    h("h1", { tabindex: "-1" }, "Wallet"),
    h("p", { class: "note" }, badge("local", "info"), " Your key is kept in this page (and in localStorage only if you tick the box); it is never sent anywhere. Transactions are signed here."),
    h("h2", null, "Key"),
    keyBox,
    balance,
    keyForm,
    h("h2", null, "Transfer"),
    txForm,
    h("h2", null, "API keys"),
    keyReqForm,
    keysBox,
  );
  return {
    title: "Wallet",
    el,
    async update() {
      await Promise.all([refresh(), refreshKeys()]);
    },
  };
}
