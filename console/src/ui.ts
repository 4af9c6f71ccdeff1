// DOM helpers and the one table component every list uses (page, sort, filter).

export type Child = Node | string | number | null | undefined | false | Child[];
type Attrs = Record<string, string | number | boolean | ((e: Event) => void) | undefined | null>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs?: Attrs | null,
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (typeof v === "function") el.addEventListener(k.replace(/^on/, ""), v);
      else if (k === "class") el.className = String(v);
      else if (v === true) el.setAttribute(k, "");
      else el.setAttribute(k, String(v));
    }
  }
  append(el, children);
  return el;
}

export function append(el: Node, children: (Child | Child[])[]): void {
  for (const c of (children as Child[]).flat(Infinity as 1) as Child[]) {
    if (Array.isArray(c)) continue;
    if (c === null || c === undefined || c === false) continue;
    el.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
  }
}

export function clear(el: Element): void {
  while (el.firstChild) el.removeChild(el.firstChild);
}

export function set(el: Element, ...children: (Child | Child[])[]): void {
  clear(el);
  append(el, children);
}

export function short(hex: string, n = 8): string {
  return hex && hex.length > 2 * n + 1 ? `${hex.slice(0, n)}…${hex.slice(-4)}` : hex;
}

export function link(href: string, text: string, title?: string): HTMLAnchorElement {
  return h("a", { href, title }, text);
}

export const acct = (id: string) => link(`#/account/${id}`, short(id), id);
export const prov = (id: string) => link(`#/provider/${id}`, short(id), id);
export const blk = (height: number) => link(`#/block/${height}`, String(height));
export const txl = (id: string) => link(`#/tx/${id}`, short(id), id);
export const mdl = (id: string, name?: string) => link(`#/model/${id}`, name ?? short(id), id);

/** Base units with thousands separators; BigInt-safe for u128 values that arrive as strings. */
export function amount(v: number | bigint | string | null | undefined): string {
  if (v === null || v === undefined) return "—";
  if (typeof v === "number" && !Number.isInteger(v)) return v.toLocaleString("en-US", { maximumFractionDigits: 2 });
  try {
    return BigInt(typeof v === "number" ? Math.round(v) : v).toLocaleString("en-US");
  } catch {
    return String(v);
  }
}

export function fixed(v: number | null | undefined, digits = 1, unit = ""): string {
  return v === null || v === undefined || !isFinite(v) ? "—" : `${v.toFixed(digits)}${unit}`;
}

export function ago(ms: number): string {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  return `${Math.floor(s / 3600)}h ago`;
}

export function badge(text: string, kind: "ok" | "bad" | "warn" | "info" = "info"): HTMLSpanElement {
  return h("span", { class: `badge ${kind}` }, text);
}

export function kv(rows: [string, Child][]): HTMLDListElement {
  return h("dl", { class: "kv" }, ...rows.map(([k, v]) => [h("dt", null, k), h("dd", null, v)]));
}

export function unavailable(what: string, message: string): HTMLElement {
  return h("p", { class: "unavailable", role: "status" }, `${what}: unavailable (${message})`);
}

let uid = 0;
export const nextId = (p: string) => `${p}-${++uid}`;

// ---------------------------------------------------------------- table

export interface Column<T> {
  key: string;
  label: string;
  /** Sort value; also the cell text when `cell` is absent. */
  value: (r: T) => string | number | bigint;
  cell?: (r: T) => Child | Child[];
  num?: boolean;
  sortable?: boolean;
}

export interface Query {
  offset: number;
  limit: number;
  sort: string;
  desc: boolean;
  filter: string;
}

export interface TableOptions<T> {
  caption: string;
  columns: Column<T>[];
  pageSize?: number;
  sort?: string;
  desc?: boolean;
  /** Text the filter box matches (lowercase substring); default: every column's value. */
  text?: (r: T) => string;
  /** Server paging: the view fetches the page for the query and calls `setPage`. */
  server?: (q: Query) => void;
  /** With `server`: which sort keys the server applies itself (others sort the page). */
  serverSorts?: string[];
  /** With `server`: the one direction (true: descending) the server orders each server sort in. */
  serverDesc?: Record<string, boolean>;
  empty?: string;
  id?: string;
}

function cmp(a: string | number | bigint, b: string | number | bigint): number {
  if (typeof a === "string" || typeof b === "string") return String(a).localeCompare(String(b));
  return a < b ? -1 : a > b ? 1 : 0;
}

export class Table<T> {
  readonly el: HTMLElement;
  private rows: T[] = [];
  private total = 0;
  private page = 0;
  private sortKey: string;
  private desc: boolean;
  private filter = "";
  private readonly size: number;
  private readonly tbody: HTMLTableSectionElement;
  private readonly headRow: HTMLTableRowElement;
  private readonly pageInfo: HTMLSpanElement;
  private readonly prev: HTMLButtonElement;
  private readonly next: HTMLButtonElement;
  private lastKey = "";
  private filterTimer = 0;

  constructor(private readonly o: TableOptions<T>) {
    this.size = o.pageSize ?? 20;
    this.sortKey = o.sort ?? o.columns[0].key;
    this.desc = o.desc ?? false;
    const fid = nextId("filter");
    const input = h("input", { id: fid, type: "search", placeholder: "filter…", autocomplete: "off" });
    input.addEventListener("input", () => {
      clearTimeout(this.filterTimer);
      this.filterTimer = window.setTimeout(() => {
        this.filter = input.value.trim().toLowerCase();
        this.page = 0;
        this.changed();
      }, 150);
    });
    this.headRow = h("tr");
    this.tbody = h("tbody");
    this.pageInfo = h("span", { class: "pageinfo", "aria-live": "polite" });
    this.prev = h("button", { type: "button", onclick: () => this.go(-1) }, "← Prev");
    this.next = h("button", { type: "button", onclick: () => this.go(1) }, "Next →");
    this.el = h(
      "section",
      { class: "tablebox", id: o.id, "aria-label": o.caption },
      h("div", { class: "tabletools" }, h("label", { for: fid }, `Filter ${o.caption.toLowerCase()}`), input),
      h("div", { class: "scroll" }, h("table", null, h("caption", null, o.caption), h("thead", null, this.headRow), this.tbody)),
      h("div", { class: "pager" }, this.prev, this.pageInfo, this.next),
    );
    this.renderHead();
  }

  private go(d: number) {
    this.page = Math.max(0, this.page + d);
    this.changed();
  }

  private query(): Query {
    return { offset: this.page * this.size, limit: this.size, sort: this.sortKey, desc: this.desc, filter: this.filter };
  }

  /** Current query (for server-paged views to refetch on a live update). */
  get q(): Query {
    return this.query();
  }

  private changed() {
    this.renderHead();
    if (this.o.server) this.o.server(this.query());
    else this.render();
  }

  private renderHead() {
    clear(this.headRow);
    for (const c of this.o.columns) {
      const active = c.key === this.sortKey;
      const th = h("th", {
        scope: "col",
        class: c.num ? "num" : undefined,
        "aria-sort": active ? (this.desc ? "descending" : "ascending") : undefined,
      });
      if (c.sortable === false) th.textContent = c.label;
      else
        th.appendChild(
          h(
            "button",
            {
              type: "button",
              class: "sort",
              onclick: () => {
                const fixed = this.o.serverDesc?.[c.key];
                if (fixed !== undefined) {
                  this.sortKey = c.key;
                  this.desc = fixed;
                } else if (this.sortKey === c.key) this.desc = !this.desc;
                else {
                  this.sortKey = c.key;
                  this.desc = !!c.num;
                }
                this.page = 0;
                this.changed();
              },
            },
            c.label,
            h("span", { "aria-hidden": "true" }, active ? (this.desc ? " ▼" : " ▲") : ""),
          ),
        );
      this.headRow.appendChild(th);
    }
  }

  /** Client mode: all rows; only the visible page is rendered. */
  setRows(rows: T[]) {
    this.rows = rows;
    this.render();
  }

  /** Server mode: the rows of the requested page and the total count. */
  setPage(rows: T[], total: number) {
    this.rows = rows;
    this.total = total;
    this.render();
  }

  private render() {
    const cols = this.o.columns;
    let visible: T[];
    let total: number;
    const col = cols.find((c) => c.key === this.sortKey) ?? cols[0];
    const sorter = (a: T, b: T) => (this.desc ? -1 : 1) * cmp(col.value(a), col.value(b));
    if (this.o.server) {
      visible = this.rows;
      if (!(this.o.serverSorts ?? []).includes(this.sortKey)) visible = [...visible].sort(sorter);
      if (this.filter && !(this.o.serverSorts ?? []).length) visible = visible.filter((r) => this.matches(r));
      total = this.total;
    } else {
      let rows = this.filter ? this.rows.filter((r) => this.matches(r)) : this.rows.slice();
      rows.sort(sorter);
      total = rows.length;
      const pages = Math.max(1, Math.ceil(total / this.size));
      if (this.page >= pages) this.page = pages - 1;
      visible = rows.slice(this.page * this.size, (this.page + 1) * this.size);
    }
    const pages = Math.max(1, Math.ceil(total / this.size));
    this.pageInfo.textContent = `Page ${this.page + 1} of ${pages} (${total} ${total === 1 ? "row" : "rows"})`;
    this.prev.disabled = this.page === 0;
    this.next.disabled = this.page + 1 >= pages;
    // Skip the DOM work when the visible cells did not change.
    const key = visible.map((r) => cols.map((c) => String(c.value(r))).join("\u0001")).join("\u0002");
    if (key === this.lastKey && this.tbody.childNodes.length) return;
    this.lastKey = key;
    const frag = document.createDocumentFragment();
    if (!visible.length) frag.appendChild(h("tr", null, h("td", { colspan: cols.length, class: "empty" }, this.o.empty ?? "Nothing yet.")));
    for (const r of visible) {
      const tr = h("tr");
      for (const c of cols) {
        const td = h("td", { class: c.num ? "num" : undefined });
        const v = c.cell ? c.cell(r) : String(c.value(r));
        append(td, Array.isArray(v) ? v : [v]);
        tr.appendChild(td);
      }
      frag.appendChild(tr);
    }
    clear(this.tbody);
    this.tbody.appendChild(frag);
  }

  private matches(r: T): boolean {
    const t = this.o.text ? this.o.text(r) : this.o.columns.map((c) => String(c.value(r))).join(" ");
    return t.toLowerCase().includes(this.filter);
  }
}
