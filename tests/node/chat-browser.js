// The chat demo in a real browser: starts a chat server (examples/chat), opens two pages in
// headless Chromium (Debian's /usr/bin/chromium driven by playwright-core), joins both to one
// room, checks the typing indicator and that a message typed in one page appears in the
// other, and saves a screenshot.
//   node chat-browser.js LANG [SCREENSHOT]       LANG: rust | node | python
// Exits 77 when LANG's chat server or Chromium is not available here.
"use strict";

const { spawn } = require("child_process");
const fs = require("fs");
const net = require("net");
const path = require("path");

const root = path.join(__dirname, "..", "..");
const lang = process.argv[2] || "rust";
const shot = process.argv[3] || path.join(root, "target", `chat-${lang}.png`);
const chromium = process.env.CHROMIUM || "/usr/bin/chromium";
const target = process.env.CARGO_TARGET_DIR || path.join(root, "target");

function skip(why) {
  console.error(`n/a: ${why}`);
  process.exit(77);
}

function command(port) {
  switch (lang) {
    case "rust":
      return [path.join(target, "debug", "examples", "chat"), [String(port)]];
    case "node":
      return [process.execPath, [path.join(root, "examples", "chat", "chat.js"), String(port)]];
    case "python":
      // py/tests/setup-env.sh builds the wheel into its venv (incremental) and sets PY_VENV.
      return ["bash", ["-c", `source py/tests/setup-env.sh && exec "$PY_VENV/bin/python" examples/chat/chat.py ${port}`]];
    default:
      throw new Error(`unknown LANG ${lang}`);
  }
}

const freePort = () =>
  new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

const portOpen = (port) =>
  new Promise((resolve) => {
    const c = net.connect(port, "127.0.0.1", () => { c.destroy(); resolve(true); });
    c.on("error", () => resolve(false));
  });

async function main() {
  if (!fs.existsSync(chromium)) skip(`${chromium} not installed (apt-get install chromium)`);
  const port = await freePort();
  const [cmd, args] = command(port);
  const file = { rust: cmd, node: args[0], python: path.join(root, "examples", "chat", "chat.py") }[lang];
  if (!fs.existsSync(file)) skip(`no ${lang} chat server here (${file})`);
  const server = spawn(cmd, args, { stdio: ["ignore", "inherit", "inherit"], cwd: root, detached: true });
  let browser;
  try {
    const deadline = Date.now() + 300000;
    while (!(await portOpen(port))) {
      if (server.exitCode !== null) throw new Error(`chat server exited with ${server.exitCode}`);
      if (Date.now() > deadline) throw new Error("chat server did not listen within 300 s");
      await new Promise((r) => setTimeout(r, 50));
    }
    const { chromium: pw } = require("playwright-core");
    browser = await pw.launch({
      executablePath: chromium,
      headless: true,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    const url = `http://127.0.0.1:${port}/`;
    const open = async (name) => {
      const page = await browser.newPage();
      await page.goto(url);
      await page.fill("#name", name);
      await page.fill("#room", "testroom");
      await page.click("#join");
      await page.waitForFunction(() => document.getElementById("status").textContent === "in testroom", null, { timeout: 15000 });
      return page;
    };
    const alice = await open("alice");
    const bob = await open("bob");
    // Typing in one page shows the indicator in the other.
    await alice.type("#text", "hello from alice");
    await bob.waitForFunction(() => document.getElementById("typing").textContent.includes("alice is typing"), null, { timeout: 10000 });
    await alice.click("form button");
    await bob.waitForFunction(() => document.getElementById("log").textContent.includes("alice: hello from alice"), null, { timeout: 10000 });
    // And the other way round.
    await bob.fill("#text", "hi alice, bob here");
    await bob.press("#text", "Enter");
    await alice.waitForFunction(() => document.getElementById("log").textContent.includes("bob: hi alice, bob here"), null, { timeout: 10000 });
    fs.mkdirSync(path.dirname(shot), { recursive: true });
    await alice.screenshot({ path: shot });
    console.log(`chat (${lang}) works in Chromium; screenshot ${shot}`);
  } finally {
    if (browser) await browser.close();
    try { process.kill(-server.pid, "SIGKILL"); } catch { server.kill("SIGKILL"); }
  }
}

main().catch((e) => {
  console.error(`chat browser test (${lang}) failed: ${e.stack || e}`);
  process.exit(1);
});
