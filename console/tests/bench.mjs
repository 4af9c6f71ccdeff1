// Console benchmarks.
//  (a) cold load against CONSOLE_URL (if set): first contentful paint and the
//      bytes transferred (encoded, i.e. gzip when the server compresses) for
//      index + js + css; also the gzip -9 size of console/dist for reference.
//  (b) live update cost on a SEEDED FIXTURE (fixture.mjs: 10,000 blocks, 1,000
//      providers, emissions and supply series) served with page.route: the time
//      of ~20 poll → re-render cycles per view (window.agoraConsole.update()).
//   CONSOLE_URL=http://127.0.0.1:8080/ node console/tests/bench.mjs
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { launch } from "./browser.mjs";
import { makeFixture } from "./fixture.mjs";

const dist = join(dirname(fileURLToPath(import.meta.url)), "..", "dist");
const UPDATES = Number(process.env.UPDATES ?? 20);
const files = { "index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8" };

function table(rows) {
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  for (const r of rows) console.log(r.map((c, i) => String(c).padEnd(w[i])).join("  "));
}

// Reference: what the three files weigh gzipped.
let gzTotal = 0;
const sizes = [["file", "bytes", "gzip -9"]];
for (const f of Object.keys(files)) {
  const b = readFileSync(join(dist, f));
  const gz = gzipSync(b, { level: 9 }).length;
  gzTotal += gz;
  sizes.push([f, b.length, gz]);
}
sizes.push(["total", "", gzTotal]);
console.log("console/dist sizes");
table(sizes);

async function coldLoad(url) {
  const { context, close } = await launch();
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.setCacheDisabled", { cacheDisabled: true });
  const urls = new Map();
  const bytes = new Map();
  cdp.on("Network.responseReceived", (e) => urls.set(e.requestId, e.response.url));
  cdp.on("Network.loadingFinished", (e) => bytes.set(e.requestId, e.encodedDataLength));
  await page.goto(url, { waitUntil: "load" });
  await page.waitForFunction(() => performance.getEntriesByName("first-contentful-paint").length > 0, null, { timeout: 10_000 });
  const fcp = await page.evaluate(() => performance.getEntriesByName("first-contentful-paint")[0].startTime);
  await page.waitForTimeout(300); // let loadingFinished events of the three files arrive
  const rows = [["resource", "transferred (encoded) bytes"]];
  let total = 0;
  for (const [id, u] of urls) {
    const p = new URL(u).pathname;
    if (!["/", "/index.html", "/console/app.js", "/console/app.css"].includes(p)) continue;
    const b = bytes.get(id) ?? 0;
    total += b;
    rows.push([p, b]);
  }
  rows.push(["total", total]);
  await close();
  return { fcp, total, rows };
}

if (process.env.CONSOLE_URL) {
  const r = await coldLoad(process.env.CONSOLE_URL);
  console.log(`\n(a) cold load of ${process.env.CONSOLE_URL}`);
  table(r.rows);
  console.log(`first contentful paint: ${r.fcp.toFixed(0)} ms (budget 1000 ms)`);
  console.log(`${r.total <= 300 * 1024 ? "PASS" : "FAIL"} transferred ${r.total} B (budget 300 KB)`);
  console.log(`${r.fcp <= 1000 ? "PASS" : "FAIL"} FCP ${r.fcp.toFixed(0)} ms`);
} else console.log("\n(a) skipped: set CONSOLE_URL for the cold-load measurement");

// (b) live updates on the fixture.
const fx = makeFixture({ seed: Number(process.env.SEED ?? 42) });
const { context, close } = await launch();
const page = await context.newPage();
const errors = [];
page.on("pageerror", (e) => errors.push(e.message));
page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
await page.route("**/*", async (route) => {
  const u = new URL(route.request().url());
  const local = { "/": "index.html", "/console/app.js": "app.js", "/console/app.css": "app.css" }[u.pathname];
  if (local) return route.fulfill({ status: 200, contentType: files[local], body: readFileSync(join(dist, local)) });
  const r = fx.handle(u.pathname + u.search, route.request().method());
  return route.fulfill({ status: r.status, contentType: "application/json", body: r.body });
});
const slashed = fx.providers.find((p) => p.audits.slashed).id;
const views = [
  ["explorer", "#/"],
  ["providers", "#/providers"],
  ["provider", `#/provider/${slashed}`],
  ["accounts", "#/accounts"],
  ["models", "#/models"],
  ["audits", "#/audits"],
  ["emissions", "#/emissions"],
  ["supply", "#/supply"],
];
console.log(`\n(b) live update on the seeded fixture (${fx.head()} blocks, ${fx.providers.length} providers), ${UPDATES} updates per view`);
const rows = [["view", "median ms", "max ms", "DOM nodes"]];
let worst = 0;
let worstMedian = 0;
await page.goto("http://fixture.local/", { waitUntil: "load" });
for (const [name, hash] of views) {
  await page.evaluate((h) => (location.hash = h), hash);
  await page.waitForSelector("main h1");
  await page.evaluate(() => window.agoraConsole.update()); // first render (fills caches)
  const times = [];
  for (let i = 0; i < UPDATES; i++) {
    await page.waitForTimeout(50);
    times.push(await page.evaluate(() => window.agoraConsole.update()));
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)];
  const max = times[times.length - 1];
  worst = Math.max(worst, max);
  worstMedian = Math.max(worstMedian, median);
  const nodes = await page.evaluate(() => document.getElementsByTagName("*").length);
  rows.push([name, median.toFixed(1), max.toFixed(1), nodes]);
}
table(rows);
await close();
console.log(`${worstMedian <= 100 ? "PASS" : "FAIL"} update median ≤ 100 ms (worst view median ${worstMedian.toFixed(1)} ms, worst max ${worst.toFixed(1)} ms)`);
if (errors.length) console.log(`page errors during the fixture run: ${errors.slice(0, 5).join(" | ")}`);
process.exit(worstMedian <= 100 && !errors.length ? 0 : 1);
