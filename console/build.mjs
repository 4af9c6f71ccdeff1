// Builds console/dist/{index.html,app.js,app.css} (deterministic: same input, same bytes).
//   node build.mjs                 type-check, then bundle into dist/
//   node build.mjs --out DIR       bundle into DIR instead
//   node build.mjs --no-typecheck  skip tsc
//   node build.mjs --tests         also bundle tests/*.test.ts into tests/build/
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const outIdx = args.indexOf("--out");
const out = outIdx >= 0 ? args[outIdx + 1] : join(root, "dist");

if (!args.includes("--no-typecheck")) {
  execFileSync(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "--noEmit", "-p", root], {
    stdio: "inherit",
  });
}

mkdirSync(out, { recursive: true });
const common = { bundle: true, minify: true, write: false, logLevel: "warning", legalComments: "none", charset: "utf8" };
const js = await build({
  ...common,
  entryPoints: [join(root, "src/main.ts")],
  format: "iife",
  target: ["es2020"],
  outfile: "app.js",
});
const css = await build({ ...common, entryPoints: [join(root, "src/style.css")], outfile: "app.css" });
writeFileSync(join(out, "app.js"), js.outputFiles[0].contents);
writeFileSync(join(out, "app.css"), css.outputFiles[0].contents);
writeFileSync(join(out, "index.html"), readFileSync(join(root, "index.html")));

if (args.includes("--tests")) {
  const dir = join(root, "tests");
  const tests = readdirSync(dir).filter((f) => f.endsWith(".test.ts"));
  await build({
    entryPoints: tests.map((f) => join(dir, f)),
    bundle: true,
    platform: "node",
    format: "esm",
    outdir: join(dir, "build"),
    outExtension: { ".js": ".mjs" },
    logLevel: "warning",
  });
}
