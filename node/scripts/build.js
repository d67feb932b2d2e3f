#!/usr/bin/env node
// Builds the native addon with the napi CLI: polysio.<platform>.node, native.js and native.d.ts.
// Debug build when POLYSIO_BUILD_PROFILE=debug (the test script), release otherwise (npm pack).
// Honours CARGO_TARGET_DIR.
"use strict";
const { spawnSync } = require("node:child_process");
const path = require("node:path");

const root = path.resolve(__dirname, "..");
const args = ["build", "--platform", "--js", "native.js", "--dts", "native.d.ts"];
// Release builds are stripped: the tarball ships the binary.
if (process.env.POLYSIO_BUILD_PROFILE !== "debug") args.push("--release", "--strip");
const pkg = require.resolve("@napi-rs/cli/package.json", { paths: [root] });
const cli = path.join(path.dirname(pkg), require(pkg).bin.napi);
const t0 = Date.now();
const r = spawnSync(process.execPath, [cli, ...args], { cwd: root, stdio: "inherit" });
if (r.status !== 0) process.exit(r.status === null ? 1 : r.status);
console.log(`native addon built (${process.env.POLYSIO_BUILD_PROFILE === "debug" ? "debug" : "release"}) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
