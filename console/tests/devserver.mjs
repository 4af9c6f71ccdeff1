// Dev-only: serve console/dist like the gateway does (index at /, assets at
// /console/*) and proxy /chain/* to the chain RPC and /v1/* to the gateway.
//   CHAIN=http://127.0.0.1:18657 GATEWAY=http://127.0.0.1:18080 PORT=18090 node console/tests/devserver.mjs
// With FIXTURE=1 it answers /chain/* and /v1/* from the seeded synthetic chain
// of fixture.mjs instead (develop the UI with no devnet at all).
import { createServer, request } from "node:http";
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { makeFixture } from "./fixture.mjs";

const dist = join(dirname(fileURLToPath(import.meta.url)), "..", "dist");
const CHAIN = new URL(process.env.CHAIN ?? "http://127.0.0.1:18657");
const GATEWAY = new URL(process.env.GATEWAY ?? "http://127.0.0.1:18080");
const PORT = Number(process.env.PORT ?? 18090);
const fixture = process.env.FIXTURE === "1" ? makeFixture({ seed: Number(process.env.SEED ?? 42) }) : null;
const files = {
  "/": ["index.html", "text/html; charset=utf-8"],
  "/index.html": ["index.html", "text/html; charset=utf-8"],
  "/console/app.js": ["app.js", "text/javascript; charset=utf-8"],
  "/console/app.css": ["app.css", "text/css; charset=utf-8"],
};

function proxy(req, res, target, path) {
  const up = request(
    { hostname: target.hostname, port: target.port, path, method: req.method, headers: { ...req.headers, host: target.host } },
    (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    },
  );
  up.on("error", (e) => {
    res.writeHead(502, { "content-type": "application/json" });
    res.end(JSON.stringify({ error: { code: "bad_gateway", message: e.message } }));
  });
  req.pipe(up);
}

createServer((req, res) => {
  const url = new URL(req.url ?? "/", "http://x");
  const f = files[url.pathname];
  if (f && req.method === "GET") {
    let body = readFileSync(join(dist, f[0]));
    const headers = { "content-type": f[1], "cache-control": "no-cache" };
    if (/\bgzip\b/.test(req.headers["accept-encoding"] ?? "")) {
      body = gzipSync(body, { level: 9 });
      headers["content-encoding"] = "gzip";
    }
    res.writeHead(200, headers);
    return res.end(body);
  }
  if (fixture && (url.pathname.startsWith("/chain/") || url.pathname.startsWith("/v1/"))) {
    const r = fixture.handle(url.pathname + url.search, req.method);
    res.writeHead(r.status, { "content-type": "application/json" });
    return res.end(r.body);
  }
  if (url.pathname.startsWith("/chain/")) return proxy(req, res, CHAIN, url.pathname.slice(6) + url.search);
  if (url.pathname.startsWith("/v1/")) return proxy(req, res, GATEWAY, url.pathname + url.search);
  res.writeHead(404, { "content-type": "application/json" });
  res.end(JSON.stringify({ error: { code: "not_found", message: "no such route" } }));
}).listen(PORT, "127.0.0.1", () => console.log(`console dev server: http://127.0.0.1:${PORT}/`));
