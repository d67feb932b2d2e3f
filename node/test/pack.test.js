"use strict";
// `npm pack` gives a tarball that installs into a fresh directory and works there with no Rust
// toolchain on PATH (the linux-x64 binary is inside), types included.

const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { run, pkg } = require("./helpers");

/** PATH without the directories that hold cargo or rustc. */
function pathWithoutRust() {
  return process.env.PATH.split(path.delimiter)
    .filter((d) => !["cargo", "rustc", "rustup"].some((b) => fs.existsSync(path.join(d, b))))
    .join(path.delimiter);
}

test("npm pack → npm install ./polysio-*.tgz in a fresh directory → server and client work", async (t) => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "polysio-pack-"));
  t.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  // The addon is already built by the test script; --ignore-scripts packs it as it is.
  const packed = await run(["npm", "pack", "--ignore-scripts", "--json", "--pack-destination", tmp], { cwd: pkg });
  assert.equal(packed.code, 0, packed.stderr);
  const info = JSON.parse(packed.stdout)[0];
  const files = info.files.map((f) => f.path).sort();
  for (const f of ["polysio.linux-x64-gnu.node", "index.js", "index.d.ts", "client.js", "client.d.ts", "native.js", "native.d.ts", "lib/server.js", "lib/client.js", "lib/native.js", "lib/errors.js", "lib/redis.js", "package.json", "README.md"]) {
    assert.ok(files.includes(f), `${f} is in the tarball (${files.join(", ")})`);
  }
  assert.ok(!files.some((f) => /^(src|test|scripts|node_modules)\//.test(f) || f === "Cargo.toml"), files.join(", "));

  const app = path.join(tmp, "app");
  fs.mkdirSync(app);
  fs.writeFileSync(path.join(app, "package.json"), JSON.stringify({ name: "app", private: true }));
  const env = { ...process.env, PATH: pathWithoutRust() };
  const npm = process.platform === "win32" ? "npm.cmd" : "npm";
  const installed = await run([npm, "install", "--offline", "--no-audit", "--no-fund", path.join(tmp, info.filename)], { cwd: app, env, timeout: 120000 });
  assert.equal(installed.code, 0, installed.stdout + installed.stderr);

  fs.writeFileSync(
    path.join(app, "main.js"),
    `
    const { Server, version } = require("polysio");
    const { io } = require("polysio/client");
    const server = new Server();
    server.on("connection", (s) => s.on("hello", (name, cb) => cb("hello " + name)));
    server.listen(0, { host: "127.0.0.1" });
    const c = io("http://127.0.0.1:" + server.address().port);
    c.emitWithAck("hello", "tarball").then(async (r) => {
      console.log(r, version);
      c.disconnect();
      await server.close();
    });
    `,
  );
  const r = await run([process.execPath, "main.js"], { cwd: app, env, timeout: 30000 });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `hello tarball ${require("../package.json").version}\n`);

  // A TypeScript consumer resolves the package's types.
  fs.writeFileSync(
    path.join(app, "main.ts"),
    `import { Server } from "polysio";\nimport { io } from "polysio/client";\nconst s: Server = new Server({ pingInterval: 1000 });\nconst c = io("http://127.0.0.1:1", { autoConnect: false });\nc.emit("x", 1);\nvoid s;\n`,
  );
  fs.writeFileSync(
    path.join(app, "tsconfig.json"),
    JSON.stringify({ compilerOptions: { strict: true, noEmit: true, module: "nodenext", moduleResolution: "nodenext", typeRoots: [path.join(pkg, "node_modules", "@types")], types: ["node"] }, files: ["main.ts"] }),
  );
  const tsc = await run([process.execPath, path.join(pkg, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.json"], { cwd: app });
  assert.equal(tsc.code, 0, tsc.stdout + tsc.stderr);
});
