// Test helpers: a stand-in `clawunits` executable and a fake OpenClaw plugin `api`.

import fs from "node:fs";
import os from "node:os";
import path from "node:path";

/**
 * A stand-in clawunits in a fresh directory. It appends {argv, caller, stdin, pid} to calls.jsonl (`caller`: the
 * root options saying who calls, `argv`: the subcommand's) and answers as
 * `setReply(subcommand, reply)` says: reply.stdout (an object is printed as JSON), reply.stderr, reply.exit,
 * reply.sleepMs, reply.bigBytes (print that many bytes), reply.ignoreTerm, reply.grandchild (start a
 * `sleep` child and write its pid to grandchild.pid). The default reply is
 * {"ok": true, "argv": [...], "display": "ran <subcommand>"}: the real CLI's --json answers always carry their
 * text as `display`.
 */
export function makeFakeClawunits() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fake-clawunits-"));
  const exe = path.join(dir, "clawunits");
  const script = `#!${process.execPath}
const fs = require("node:fs");
const path = require("node:path");
const dir = ${JSON.stringify(dir)};
// The root options that say who calls come first; recorded apart from the subcommand's argv.
const all = process.argv.slice(2);
const caller = [];
while (["--via", "--sender", "--gateway-owner", "--sender-is-owner", "--agent-id", "--session-key"].includes(all[0])) {
  caller.push(...all.splice(0, all[0] === "--sender-is-owner" ? 1 : 2));
}
const argv = all;
let stdin = "";
try { stdin = fs.readFileSync(0, "utf8"); } catch {}
fs.appendFileSync(path.join(dir, "calls.jsonl"), JSON.stringify({ argv, caller, stdin, pid: process.pid }) + "\\n");
let replies = {};
try { replies = JSON.parse(fs.readFileSync(path.join(dir, "replies.json"), "utf8")); } catch {}
const sub = argv[0] === "config" ? "config " + argv[1] : argv[0];
const r = replies[sub] ?? replies["*"] ?? {};
if (r.ignoreTerm) process.on("SIGTERM", () => {});
if (r.grandchild) {
  const child = require("node:child_process").spawn("sleep", ["30"], { stdio: "ignore" });
  fs.writeFileSync(path.join(dir, "grandchild.pid"), String(child.pid));
}
const finish = () => {
  if (r.stderr) process.stderr.write(r.stderr);
  if (r.bigBytes) {
    process.stdout.write("x".repeat(r.bigBytes));
  } else if (r.stdout !== undefined) {
    process.stdout.write(typeof r.stdout === "string" ? r.stdout : JSON.stringify(r.stdout));
  } else {
    process.stdout.write(JSON.stringify({ ok: true, argv, display: "ran " + sub }));
  }
  process.exitCode = r.exit ?? 0;
};
if (r.sleepMs) setTimeout(finish, r.sleepMs); else finish();
`;
  fs.writeFileSync(exe, script, { mode: 0o755 });
  return {
    dir,
    exe,
    setReply(sub, reply) {
      const file = path.join(dir, "replies.json");
      let replies = {};
      try {
        replies = JSON.parse(fs.readFileSync(file, "utf8"));
      } catch {
        // none yet
      }
      replies[sub] = reply;
      fs.writeFileSync(file, JSON.stringify(replies));
    },
    clearReplies() {
      fs.rmSync(path.join(dir, "replies.json"), { force: true });
    },
    calls() {
      const file = path.join(dir, "calls.jsonl");
      if (!fs.existsSync(file)) return [];
      return fs
        .readFileSync(file, "utf8")
        .split("\n")
        .filter(Boolean)
        .map((line) => JSON.parse(line));
    },
    lastCall() {
      return this.calls().at(-1);
    },
    reset() {
      fs.rmSync(path.join(dir, "calls.jsonl"), { force: true });
      this.clearReplies();
    },
    cleanup() {
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A fake OpenClaw plugin api that records what register() registers. */
export function makeFakeApi({ pluginConfig = {}, registrationMode = "full" } = {}) {
  const logs = [];
  const api = {
    id: "clawunits",
    registrationMode,
    pluginConfig,
    tools: new Map(),
    toolOptions: new Map(),
    commands: new Map(),
    methods: new Map(),
    methodOptions: new Map(),
    services: [],
    logs,
    logger: {
      debug: (m) => logs.push(["debug", m]),
      info: (m) => logs.push(["info", m]),
      warn: (m) => logs.push(["warn", m]),
      error: (m) => logs.push(["error", m]),
    },
    registerTool(factory, opts) {
      api.tools.set(opts?.name, factory);
      api.toolOptions.set(opts?.name, opts);
    },
    registerCommand(cmd) {
      api.commands.set(cmd.name, cmd);
    },
    registerGatewayMethod(name, handler, opts) {
      api.methods.set(name, handler);
      api.methodOptions.set(name, opts);
    },
    registerService(service) {
      api.services.push(service);
    },
    /** Build a tool from its factory with `ctx` and run it. */
    async tool(name, params, ctx = {}) {
      const tool = api.tools.get(name)(ctx);
      return tool.execute("call-1", params);
    },
    /** Run a chat command's handler with `ctx` (args is the raw text after the command). */
    async command(name, args, ctx = {}) {
      return api.commands.get(name).handler({ channel: "webchat", senderId: "cli", ...ctx, args });
    },
    /** Call a gateway method; resolves with {ok, payload, error}. */
    async rpc(name, params) {
      let answer;
      await api.methods.get(name)({
        params,
        respond: (ok, payload, error) => {
          answer = { ok, payload, error };
        },
      });
      return answer;
    },
  };
  return api;
}

/** Wait until `fn()` is truthy (polling), or fail after `ms`. */
export async function waitFor(fn, ms = 5000, what = "condition") {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
