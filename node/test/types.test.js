"use strict";
// TypeScript: the hand-written index.d.ts / client.d.ts type a realistic example (strict mode),
// reject misuse, and the compiled example runs.

const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { run, pkg } = require("./helpers");

const tsc = path.join(pkg, "node_modules", "typescript", "bin", "tsc");
const dir = path.join(pkg, "examples", "typescript");

test("examples/typescript/example.ts type-checks against index.d.ts and client.d.ts", async () => {
  const r = await run([process.execPath, tsc, "-p", path.join(dir, "tsconfig.json")], { cwd: pkg });
  assert.equal(r.code, 0, r.stdout + r.stderr);
});

test("misuse is a type error (the @ts-expect-error lines, uncommented)", async (t) => {
  const bad = path.join(dir, "misuse.tmp.ts");
  const cfg = path.join(dir, "tsconfig.misuse.tmp.json");
  t.after(() => [bad, cfg].forEach((f) => fs.rmSync(f, { force: true })));
  const src = fs.readFileSync(path.join(dir, "example.ts"), "utf8").replace(/^\s*\/\/ @ts-expect-error.*$/gm, "");
  fs.writeFileSync(bad, src);
  const base = JSON.parse(fs.readFileSync(path.join(dir, "tsconfig.json"), "utf8"));
  fs.writeFileSync(cfg, JSON.stringify({ ...base, files: ["misuse.tmp.ts"] }));
  const r = await run([process.execPath, tsc, "-p", cfg], { cwd: pkg });
  assert.notEqual(r.code, 0);
  const errors = r.stdout.split("\n").filter((l) => /misuse\.tmp\.ts\(\d+,\d+\): error/.test(l));
  assert.equal(errors.length, 3, r.stdout);
});

test("the compiled example runs", async (t) => {
  const out = path.join(dir, "out.tmp");
  t.after(() => fs.rmSync(out, { recursive: true, force: true }));
  const c = await run([process.execPath, tsc, "-p", path.join(dir, "tsconfig.json"), "--noEmit", "false", "--outDir", out], { cwd: pkg });
  assert.equal(c.code, 0, c.stdout + c.stderr);
  const r = await run([process.execPath, path.join(out, "example.js")], { cwd: pkg, timeout: 30000 });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.signal, null);
  const lines = r.stdout.trim().split("\n").sort();
  assert.deepEqual(lines, ["binary [ 1, 2, 3 ]", "in lobby: [ 'lobby' ]", "ts: hello lobby"].sort());
});
