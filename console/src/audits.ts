// Audits and disputes as they happen, emissions per tempo, supply over time.
import { api, type Batch, type Dispute, type Emission, type Slash, type SupplyPoint, type Verdict } from "./api";
import { Chart } from "./chart";
import { acct, amount, badge, blk, h, prov, set, short, Table, unavailable } from "./ui";
import type { View } from "./view";

const page = (title: string, ...c: (Node | string)[]) => h("section", { class: "view" }, h("h1", { tabindex: "-1" }, title), ...c);

/** Blocks of batch history the audits view follows. */
const WINDOW = 600;
/** Blocks of recent batches re-read on each update (their drawn audits appear later). */
const REDRAW = 30;

export function audits(): View {
  const msg = h("div");
  const verdicts = new Map<string, Verdict[]>();
  const final = new Set<string>();
  const held = new Map<string, Batch>();
  let newest = 0;
  const verdictCell = (b: Batch) => {
    const v = verdicts.get(b.id);
    if (!b.audits.length) return "none drawn";
    if (!v) return "…";
    return b.audits.map(([idx, who]) => {
      const got = v.find((x) => x.index === idx && x.auditor === who);
      return h("span", { class: "verdict" }, `#${idx} `, got ? (got.passed ? badge("passed", "ok") : badge("FAILED", "bad")) : badge("pending", "warn"), " ");
    });
  };
  const batches = new Table<Batch>({
    caption: "Receipt batches and audits",
    id: "batches",
    sort: "height",
    desc: true,
    pageSize: 15,
    columns: [
      { key: "height", label: "Height", num: true, value: (b) => b.height, cell: (b) => blk(b.height) },
      { key: "id", label: "Batch", value: (b) => b.id, cell: (b) => h("code", { title: b.id }, short(b.id)) },
      { key: "provider", label: "Provider", value: (b) => b.provider, cell: (b) => prov(b.provider) },
      { key: "count", label: "Jobs", num: true, value: (b) => b.count },
      { key: "drawn", label: "Drawn auditors", value: (b) => b.audits.map((a) => a[1]).join(" "), cell: (b) => b.audits.map(([i, a]) => [`#${i} `, acct(a), " "]), sortable: false },
      {
        key: "verdicts",
        label: "Verdicts",
        value: (b) => (verdicts.get(b.id) ?? []).map((v) => `${v.index}:${v.passed}`).join(",") || (b.audits.length ? "pending" : "none"),
        cell: verdictCell,
      },
    ],
    empty: "No receipt batches in the last blocks.",
  });
  const disputes = new Table<Dispute>({
    caption: "Disputes",
    id: "disputes",
    sort: "opened",
    desc: true,
    columns: [
      { key: "opened", label: "Opened at", num: true, value: (d) => d.opened_at, cell: (d) => blk(d.opened_at) },
      { key: "provider", label: "Provider", value: (d) => d.provider, cell: (d) => prov(d.provider) },
      { key: "job", label: "Batch / job", value: (d) => `${d.batch}:${d.index}`, cell: (d) => `${short(d.batch)} #${d.index}` },
      { key: "accuser", label: "Accuser", value: (d) => d.accuser, cell: (d) => acct(d.accuser) },
      {
        key: "votes",
        label: "Committee votes",
        value: (d) => d.votes.length,
        cell: (d) =>
          d.committee.map((m) => {
            const v = d.votes.find(([w]) => w === m);
            return h("span", { class: "vote" }, acct(m), " ", v ? (v[1] ? badge("confirm", "bad") : badge("refute", "ok")) : badge("not voted", "warn"), " ");
          }),
      },
    ],
    empty: "No open disputes.",
  });
  const slashes = new Table<Slash>({
    caption: "Slashes",
    id: "slashes",
    sort: "height",
    desc: true,
    columns: [
      { key: "height", label: "Height", num: true, value: (s) => s.height, cell: (s) => blk(s.height) },
      { key: "provider", label: "Provider", value: (s) => s.provider, cell: (s) => prov(s.provider) },
      { key: "amount", label: "Amount", num: true, value: (s) => s.amount, cell: (s) => amount(s.amount) },
      { key: "reason", label: "Reason", value: (s) => s.reason },
    ],
    empty: "Nobody slashed.",
  });
  const dMsg = h("div");
  const sMsg = h("div");
  return {
    title: "Audits",
    el: page("Audits and disputes", msg, batches.el, h("h2", null, "Disputes"), dMsg, disputes.el, h("h2", null, "Slashes"), sMsg, slashes.el),
    async update() {
      const others = Promise.all([api.disputes(), api.slashes()]);
      const head = await api.head();
      if (!head.ok) return set(msg, unavailable("Chain", head.message));
      // Incremental: the first update reads the last WINDOW blocks of batches,
      // later ones only the batches after the newest height held.
      const floor = Math.max(0, head.data.height - WINDOW);
      // Re-read the last REDRAW blocks too: a batch's audits are drawn a few blocks after it lands.
      let since = Math.max(floor, newest - REDRAW);
      for (let i = 0; i < 8; i++) {
        const r = await api.batches(since);
        if (!r.ok) {
          set(msg, unavailable("Batches", r.message));
          break;
        }
        set(msg);
        for (const b of r.data.batches) held.set(b.id, b);
        if (r.data.batches.length) newest = Math.max(newest, r.data.batches[r.data.batches.length - 1].height);
        if (!r.data.more || !r.data.batches.length) break;
        since = r.data.batches[r.data.batches.length - 1].height;
      }
      for (const [id, b] of held) if (b.height <= floor) held.delete(id);
      const all = [...held.values()];
      // Verdicts of the newest batches whose drawn audits are not all judged yet.
      const recent = [...all].sort((a, b) => b.height - a.height).filter((b) => b.audits.length && !final.has(b.id)).slice(0, 12);
      await Promise.all(
        recent.map(async (b) => {
          const v = await api.verdicts(b.id);
          if (!v.ok) return;
          verdicts.set(b.id, v.data);
          if (b.audits.every(([i, a]) => v.data.some((x) => x.index === i && x.auditor === a))) final.add(b.id);
        }),
      );
      batches.setRows(all);
      const [d, s] = await others;
      if (d.ok) {
        set(dMsg);
        disputes.setRows(d.data);
      } else set(dMsg, unavailable("Disputes", d.message));
      if (s.ok) {
        set(sMsg);
        slashes.setRows(s.data);
      } else set(sMsg, unavailable("Slashes", s.message));
    },
  };
}

export function emissions(): View {
  const msg = h("div");
  const chart = new Chart("Emission per tempo", ["providers", "validators", "owners", "delegators"]);
  const table = new Table<Emission>({
    caption: "Emissions per tempo",
    id: "emissions",
    sort: "height",
    desc: true,
    columns: [
      { key: "height", label: "Height", num: true, value: (e) => e.height, cell: (e) => blk(e.height) },
      { key: "epoch", label: "Epoch", num: true, value: (e) => e.epoch },
      { key: "total", label: "Total", num: true, value: (e) => e.total, cell: (e) => amount(e.total) },
      { key: "providers", label: "Providers", num: true, value: (e) => e.providers, cell: (e) => amount(e.providers) },
      { key: "validators", label: "Validators", num: true, value: (e) => e.validators, cell: (e) => amount(e.validators) },
      { key: "owners", label: "Owners", num: true, value: (e) => e.owners, cell: (e) => amount(e.owners) },
      { key: "delegators", label: "Delegators", num: true, value: (e) => e.delegators ?? 0, cell: (e) => amount(e.delegators ?? 0) },
      {
        key: "recipients",
        label: "Recipients",
        num: true,
        value: (e) => e.recipients.length,
        cell: (e) =>
          h(
            "details",
            null,
            h("summary", null, `${e.recipients.length}`),
            h("ul", { class: "plain" }, e.recipients.slice(0, 50).map((r) => h("li", null, acct(r.account), ` ${r.role} ${amount(r.amount)}`))),
          ),
      },
    ],
    text: (e) => `${e.height} ${e.epoch} ${e.recipients.map((r) => r.account + " " + r.role).join(" ")}`,
    empty: "No emissions yet.",
  });
  let due = 0; // height at which the next tempo's emission is expected
  return {
    title: "Emissions",
    el: page("Emissions", msg, chart.el, table.el),
    destroy: () => chart.destroy(),
    async update() {
      // Emissions change only at tempo boundaries: skip the (large) list until one is due.
      if (due) {
        const hd = await api.head();
        if (hd.ok && hd.data.height < due) return;
      }
      const r = await api.emissions();
      if (!r.ok) return set(msg, unavailable("Emissions", r.message));
      set(msg);
      const [a, b] = r.data;
      due = a && b && a.height > b.height ? a.height + (a.height - b.height) : 0;
      const asc = [...r.data].sort((a, b) => a.height - b.height).slice(-500);
      chart.set(
        asc.map((e) => e.height),
        [asc.map((e) => Number(e.providers)), asc.map((e) => Number(e.validators)), asc.map((e) => Number(e.owners)), asc.map((e) => Number(e.delegators ?? 0))],
      );
      table.setRows(r.data);
    },
  };
}

export function supply(): View {
  const msg = h("div");
  const now = h("div");
  const chart = new Chart("Supply over time", ["total supply", "emitted", "burned", "emission pool"]);
  let pts: SupplyPoint[] = [];
  return {
    title: "Supply",
    el: page("Supply", now, msg, chart.el),
    destroy: () => chart.destroy(),
    async update() {
      const last = pts.length ? pts[pts.length - 1].height : 0;
      const [cur, series] = await Promise.all([api.supply(), api.supplySeries(last)]);
      if (cur.ok)
        set(
          now,
          h(
            "div",
            { class: "cards" },
            (
              [
                ["Total supply", cur.data.total_supply],
                ["Emitted", cur.data.emitted],
                ["Burned", cur.data.burned],
                ["Emission pool", cur.data.emission_pool],
                ["Supply cap", cur.data.supply_cap],
              ] as [string, number][]
            ).map(([k, v]) => h("div", { class: "card" }, h("div", { class: "label" }, k), h("div", { class: "value" }, amount(v)))),
          ),
        );
      else set(now, unavailable("Supply", cur.message));
      if (!series.ok) return set(msg, unavailable("Supply history", series.message));
      set(msg);
      // Fetched incrementally: only points after the last one held.
      for (const p of series.data) if (!pts.length || p.height > pts[pts.length - 1].height) pts.push(p);
      const step = Math.ceil(pts.length / 2000);
      const shown = step > 1 ? pts.filter((_, i) => i % step === 0 || i === pts.length - 1) : pts;
      chart.set(
        shown.map((p) => p.height),
        [shown.map((p) => Number(p.total_supply)), shown.map((p) => Number(p.emitted)), shown.map((p) => Number(p.burned)), shown.map((p) => Number(p.emission_pool))],
      );
    },
  };
}
