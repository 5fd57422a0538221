// runClawunits: argv and stdin in, JSON out, errors thrown with the CLI's message, timeout, output cap.

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, beforeEach, describe, it } from "node:test";

import { ClawunitsError, cliSettings, runClawunits } from "../lib/cli.js";
import { isAlive, makeFakeClawunits, waitFor } from "../testing/helpers.mjs";

const fake = makeFakeClawunits();
const config = { clawunitsPath: fake.exe };
after(() => fake.cleanup());
beforeEach(() => fake.reset());

describe("runClawunits", () => {
  it("passes the argv as is (no shell) and stdin, and parses the JSON answer", async () => {
    fake.setReply("launch", { stdout: { id: "abcd1234", name: "x" } });
    const argv = ["launch", "--json", "--name=$(touch /tmp/pwned)", "--", "-"];
    const data = await runClawunits(argv, { stdin: "fix `it` & 'quote' \"this\"\nline 2", config });
    assert.deepEqual(data, { id: "abcd1234", name: "x" });
    const call = fake.lastCall();
    assert.deepEqual(call.argv, argv);
    assert.equal(call.stdin, "fix `it` & 'quote' \"this\"\nline 2");
  });

  it("gives an empty stdin when there is nothing to send", async () => {
    await runClawunits(["stats", "--json"], { config });
    assert.equal(fake.lastCall().stdin, "");
  });

  it("throws the CLI's error text on a non-zero exit, with code, exit code and hint", async () => {
    fake.setReply("respond", {
      stdout: { error: "unknown session 'nope'", code: "not-found", hint: "see clawunits sessions" },
      stderr: "clawunits: error: unknown session 'nope' (hint: see clawunits sessions)\n",
      exit: 3,
    });
    await assert.rejects(runClawunits(["respond", "--json", "--", "nope", "-"], { stdin: "hi", config }), (e) => {
      assert.ok(e instanceof ClawunitsError);
      assert.equal(e.message, "unknown session 'nope'");
      assert.equal(e.code, "not-found");
      assert.equal(e.exitCode, 3);
      assert.equal(e.hint, "see clawunits sessions");
      // OpenClaw passes a ToolInputError's message through to the caller.
      assert.equal(e.name, "ToolInputError");
      assert.equal(e.status, 400);
      return true;
    });
  });

  it("names errors so OpenClaw reports them: forbidden is an authorization error, systemd an internal one", async () => {
    fake.setReply("kill", {
      stdout: { error: "session x [a] belongs to agent 'a', not 'b'", code: "forbidden" },
      exit: 9,
    });
    await assert.rejects(runClawunits(["kill", "--json"], { config }), { name: "ToolAuthorizationError", status: 403 });
    fake.setReply("kill", { stdout: { error: "cannot reach the user manager", code: "systemd" }, exit: 6 });
    await assert.rejects(runClawunits(["kill", "--json"], { config }), (e) => {
      assert.equal(e.name, "ClawunitsError");
      assert.equal(e.message, "cannot reach the user manager");
      return true;
    });
    fake.setReply("launch", {
      stdout: { error: "ERROR: Launch blocked — no autonomy skill found.\n...", code: "launch-blocked" },
      exit: 8,
    });
    await assert.rejects(runClawunits(["launch", "--json"], { config }), (e) => {
      assert.equal(e.name, "ToolInputError");
      assert.match(e.message, /^ERROR: Launch blocked — no autonomy skill found\./);
      return true;
    });
  });

  it("falls back to the stderr line when a failing CLI printed no JSON", async () => {
    fake.setReply("output", { stdout: "", stderr: "Traceback...\nclawunits: error: something broke\n", exit: 70 });
    await assert.rejects(runClawunits(["output", "--json"], { config }), { message: "something broke", code: "error" });
    fake.setReply("output", { stdout: "", stderr: "", exit: 2 });
    await assert.rejects(runClawunits(["output", "--json"], { config }), {
      message: "clawunits output exited with code 2",
    });
  });

  it("rejects a successful exit without JSON", async () => {
    fake.setReply("stats", { stdout: "not json" });
    await assert.rejects(runClawunits(["stats", "--json"], { config }), {
      code: "protocol",
      message: /printed no JSON: not json/,
    });
  });

  it("says how to fix a missing executable", async () => {
    const missing = path.join(fake.dir, "no-such-clawunits");
    await assert.rejects(runClawunits(["stats", "--json"], { config: { clawunitsPath: missing } }), (e) => {
      assert.equal(e.code, "spawn");
      assert.match(
        e.message,
        /clawunits executable not found: .*no-such-clawunits \(set plugins\.entries\.clawunits\.config\.clawunitsPath\)/,
      );
      return true;
    });
  });

  it("kills the CLI and everything it started on timeout", async () => {
    fake.setReply("kill", { sleepMs: 20_000, grandchild: true });
    const started = Date.now();
    await assert.rejects(runClawunits(["kill", "--json"], { config: { ...config, timeoutMs: 700 } }), (e) => {
      assert.equal(e.code, "timeout");
      assert.match(e.message, /clawunits kill timed out after 700 ms and was killed/);
      return true;
    });
    assert.ok(Date.now() - started < 5000);
    const { pid } = fake.lastCall();
    const grandchild = Number(fs.readFileSync(path.join(fake.dir, "grandchild.pid"), "utf8"));
    await waitFor(() => !isAlive(pid) && !isAlive(grandchild), 3000, "the CLI's process group to die");
  });

  it("sends SIGKILL when the CLI ignores SIGTERM", async () => {
    fake.setReply("fg", { sleepMs: 20_000, ignoreTerm: true });
    const started = Date.now();
    await assert.rejects(runClawunits(["fg", "--json"], { config: { ...config, timeoutMs: 500 } }), {
      code: "timeout",
    });
    assert.ok(Date.now() - started < 6000);
    await waitFor(() => !isAlive(fake.lastCall().pid), 3000, "the CLI to die");
  });

  it("kills a CLI that prints more than maxOutputBytes", async () => {
    fake.setReply("output", { bigBytes: 200_000, sleepMs: 0 });
    await assert.rejects(runClawunits(["output", "--json"], { config: { ...config, maxOutputBytes: 4096 } }), (e) => {
      assert.equal(e.code, "output-limit");
      assert.match(e.message, /printed more than 4096 bytes and was killed/);
      return true;
    });
  });

  it("kills the CLI when the tool call is aborted", async () => {
    fake.setReply("launch", { sleepMs: 20_000 });
    const controller = new AbortController();
    const pending = runClawunits(["launch", "--json"], { config, signal: controller.signal });
    await waitFor(() => fake.lastCall(), 3000, "the CLI to start");
    controller.abort();
    await assert.rejects(pending, { code: "aborted" });
    await waitFor(() => !isAlive(fake.lastCall().pid), 3000, "the CLI to die");
  });
});

describe("cliSettings", () => {
  it("defaults to clawunits on PATH, 60 s and 4 MB", () => {
    assert.deepEqual(cliSettings({}), { path: "clawunits", timeoutMs: 60000, maxOutputBytes: 4194304 });
    assert.deepEqual(cliSettings({ clawunitsPath: " /x/clawunits ", timeoutMs: 5000, maxOutputBytes: 2048 }), {
      path: "/x/clawunits",
      timeoutMs: 5000,
      maxOutputBytes: 2048,
    });
    assert.equal(cliSettings({ timeoutMs: -1 }).timeoutMs, 60000);
  });
});
