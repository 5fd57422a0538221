// The plugin against a fake OpenClaw api and a stand-in clawunits: every tool, command and RPC parameter
// must reach the CLI's argv (or stdin), and every answer or error must come back in the surface's form: a
// tool's or a command's text is the CLI's `display`, as it is (the plugin formats nothing).

import assert from "node:assert/strict";
import { after, beforeEach, describe, it } from "node:test";

import plugin, { DEFAULT_RESUME_PROMPT, RPC_METHODS, TOOL_NAMES, resetSyncState } from "../index.js";
import { makeFakeApi, makeFakeClawunits, waitFor } from "../testing/helpers.mjs";

const fake = makeFakeClawunits();
after(() => fake.cleanup());

const agentChannels = { "/ws/seo": "telegram|seo-bot|111", "/ws/seo/project-x": "telegram|seo-bot|222" };
const baseConfig = { clawunitsPath: fake.exe, agentChannels, fallbackChannel: "telegram|999" };

const SESSION = {
  id: "a1b2c3d4",
  name: "fix-auth",
  status: "running",
  prompt: "Fix the authentication bug in src/auth.ts — users are logged out after refresh, every single time",
  workdir: "/app",
  model: null,
  multiTurn: true,
  costUsd: 0,
  durationMs: 135000,
  claudeSessionId: "550e8400-e29b-41d4-a716-446655440000",
  resumedFrom: null,
  forked: false,
};

// What `clawunits launch --json` says of SESSION as its `display` (clawunits/render.py).
const LAUNCHED = [
  "Session launched successfully.",
  "  Name: fix-auth",
  "  ID: a1b2c3d4",
  "  Dir: /app",
  "  Model: default",
  '  Prompt: "Fix the authentication bug in src/auth.ts — users are logged out after refresh, ..."',
  "  Mode: multi-turn (use clawunits respond to send follow-up messages)",
  "  Unit: clawunits-fix-auth-a1b2c3d4.service",
  "",
  "Use clawunits sessions to check status, clawunits output to see output.",
].join("\n");

const WORKTREE = {
  path: "/state/worktrees/app/fix-auth",
  branch: "clawunits/fix-auth",
  base: "dev",
  baseCommit: "0123abcd",
  repo: "/app",
  removed: false,
};

/** A registered plugin (full mode) whose config sync has already run. */
async function setup(config = baseConfig, registrationMode = "full") {
  resetSyncState();
  fake.reset();
  const api = makeFakeApi({ pluginConfig: config, registrationMode });
  plugin.register(api);
  if (registrationMode === "full") await waitFor(() => fake.calls().length >= 1, 5000, "the config sync");
  fake.reset();
  return api;
}

const argvOf = () => fake.lastCall().argv;
const stdinOf = () => fake.lastCall().stdin;

describe("registration", () => {
  it("registers the tools, commands, RPC methods and the config service", async () => {
    const api = await setup();
    assert.deepEqual([...api.tools.keys()], TOOL_NAMES);
    for (const name of TOOL_NAMES) {
      const tool = api.tools.get(name)({});
      assert.equal(tool.name, name);
      assert.equal(tool.parameters.type, "object");
      assert.equal(typeof tool.execute, "function");
      assert.ok(tool.description.length > 20);
    }
    assert.deepEqual([...api.commands.keys()].sort(), [
      "claude",
      "claude_bg",
      "claude_fg",
      "claude_kill",
      "claude_merge",
      "claude_notify",
      "claude_pr",
      "claude_recover",
      "claude_respond",
      "claude_resume",
      "claude_sessions",
      "claude_stats",
      "claude_worktree",
    ]);
    for (const cmd of api.commands.values()) assert.equal(cmd.requireAuth, true);
    assert.deepEqual([...api.methods.keys()], RPC_METHODS);
    assert.deepEqual(RPC_METHODS.sort(), [
      "claude-code.bg",
      "claude-code.fg",
      "claude-code.kill",
      "claude-code.launch",
      "claude-code.merge",
      "claude-code.notify",
      "claude-code.output",
      "claude-code.pr",
      "claude-code.recover",
      "claude-code.respond",
      "claude-code.resume",
      "claude-code.sessions",
      "claude-code.stats",
      "claude-code.worktree",
    ]);
    assert.equal(api.methodOptions.get("claude-code.stats").scope, "operator.read");
    assert.equal(api.methodOptions.get("claude-code.worktree").scope, "operator.read");
    assert.equal(api.methodOptions.get("claude-code.launch").scope, "operator.write");
    assert.equal(api.methodOptions.get("claude-code.recover").scope, "operator.write");
    assert.equal(api.methodOptions.get("claude-code.merge").scope, "operator.write");
    assert.equal(api.methodOptions.get("claude-code.pr").scope, "operator.write");
    assert.deepEqual(
      api.services.map((s) => s.id),
      ["clawunits-config"],
    );
  });

  it("tool parameters use the seed's names", async () => {
    const api = await setup();
    const props = (name) => Object.keys(api.tools.get(name)({}).parameters.properties).sort();
    assert.deepEqual(props("claude_launch"), [
      "allowed_tools",
      "cpu_quota",
      "fork_session",
      "max_budget_usd",
      "memory_max",
      "model",
      "multi_turn_disabled",
      "name",
      "notify",
      "permission_mode",
      "prompt",
      "resume_session_id",
      "runtime_max",
      "system_prompt",
      "tasks_max",
      "workdir",
      "worktree",
      "base",
      "priority",
    ].sort());
    assert.deepEqual(props("claude_respond"), ["interrupt", "message", "planVersion", "session", "userInitiated"]);
    assert.deepEqual(props("claude_fg"), ["lines", "session"]);
    assert.deepEqual(props("claude_bg"), ["session"]);
    assert.deepEqual(props("claude_kill"), ["remove_worktree", "session"]);
    assert.deepEqual(props("claude_worktree"), ["session"]);
    assert.deepEqual(props("claude_merge"), ["instructions", "into", "resolve", "session", "squash"]);
    assert.deepEqual(props("claude_pr"), ["base", "draft", "remote", "session"]);
    assert.deepEqual(props("claude_notify"), ["policy", "session"]);
    assert.deepEqual(props("claude_output"), ["full", "lines", "session"]);
    assert.deepEqual(props("claude_sessions"), ["status"]);
    assert.deepEqual(props("claude_stats"), []);
    assert.deepEqual(props("claude_recover"), ["dry_run", "session"]);
    assert.deepEqual(api.tools.get("claude_launch")({}).parameters.required, ["prompt"]);
    assert.deepEqual(api.tools.get("claude_respond")({}).parameters.required, ["session", "message"]);
  });
});

describe("config sync", () => {
  beforeEach(() => {
    resetSyncState();
    fake.reset();
  });

  it("writes the plugin config to clawunits (stdin) when registered in full mode", async () => {
    const config = { ...baseConfig, maxSessions: 3 };
    const api = makeFakeApi({ pluginConfig: config });
    plugin.register(api);
    // The service start that follows shares the sync under way instead of running a second one.
    await api.services[0].start({});
    assert.equal(fake.calls().length, 1);
    assert.deepEqual(argvOf(), ["config", "sync", "--json"]);
    assert.deepEqual(JSON.parse(stdinOf()), config);
    // The same config registered again (hot reload of something else): nothing to write.
    plugin.register(makeFakeApi({ pluginConfig: { ...config } }));
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(fake.calls().length, 1);
    // A service (re)start always writes: the file may have been changed since.
    await api.services[0].start({});
    assert.equal(fake.calls().length, 2);
    // A new config is written at once.
    plugin.register(makeFakeApi({ pluginConfig: { ...config, maxSessions: 4 } }));
    await waitFor(() => fake.calls().length === 3, 5000, "the new sync");
    assert.equal(JSON.parse(stdinOf()).maxSessions, 4);
  });

  it("has no side effects outside full mode", async () => {
    for (const mode of ["discovery", "tool-discovery", "setup-only", "cli-metadata"]) {
      plugin.register(makeFakeApi({ pluginConfig: baseConfig, registrationMode: mode }));
    }
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(fake.calls().length, 0);
  });

  it("logs a failed sync and retries it on the next start", async () => {
    fake.setReply("config sync", {
      stdout: { error: "plugin config: unknown option(s): bogus", code: "config" },
      exit: 2,
    });
    const api = makeFakeApi({ pluginConfig: baseConfig });
    plugin.register(api);
    await waitFor(
      () =>
        api.logs.some(([level, m]) => level === "warn" && /config sync failed: plugin config: unknown option/.test(m)),
      5000,
      "the warning",
    );
    fake.clearReplies();
    await api.services[0].start({});
    assert.equal(fake.calls().length, 2);
    assert.ok(api.logs.some(([level, m]) => level === "info" && /config synced/.test(m)));
  });
});

describe("agent tools", () => {
  const ctx = { agentId: "main", workspaceDir: "/ws/main", sessionKey: "agent:main:main" };

  it("claude_launch maps every parameter, runs the guards, and reads the prompt from stdin", async () => {
    const api = await setup();
    fake.setReply("launch", { stdout: { ...SESSION, display: LAUNCHED } });
    const res = await api.tool(
      "claude_launch",
      {
        prompt: "Fix the bug; rm -rf / `whoami`",
        name: "fix-auth",
        workdir: "/app",
        model: "opus",
        max_budget_usd: 3.5,
        system_prompt: "--Be terse",
        allowed_tools: ["Read", "Bash(git:*)"],
        resume_session_id: "old-session",
        fork_session: true,
        multi_turn_disabled: true,
        permission_mode: "plan",
        memory_max: "2G",
        cpu_quota: "50%",
        tasks_max: "256",
        runtime_max: "2h",
      },
      { ...ctx, messageChannel: "telegram|42", agentAccountId: "bot" },
    );
    assert.deepEqual(argvOf(), [
      "launch",
      "--json",
      "--surface",
      "tool",
      "--name=fix-auth",
      "--workdir=/app",
      "--model=opus",
      "--max-budget-usd=3.5",
      "--system-prompt=--Be terse",
      "--allowed-tools=Read,Bash(git:*)",
      "--resume=old-session",
      "--fork",
      "--multi-turn-disabled",
      "--permission-mode=plan",
      "--channel=telegram|bot|42",
      "--agent=main",
      "--guards",
      "--agent-workspace=/ws/main",
      "--memory-max=2G",
      "--cpu-quota=50%",
      "--tasks-max=256",
      "--runtime-max=2h",
      "--",
      "-",
    ]);
    assert.equal(stdinOf(), "Fix the bug; rm -rf / `whoami`");
    assert.deepEqual(res.details, { ...SESSION, display: LAUNCHED });
    assert.equal(res.content[0].text, LAUNCHED);
    assert.equal(res.content[0].type, "text");
  });

  it("claude_launch defaults the workdir to the agent workspace and routes by agentChannels", async () => {
    const api = await setup();
    await api.tool("claude_launch", { prompt: "hi" }, ctx);
    assert.deepEqual(argvOf(), [
      "launch",
      "--json",
      "--surface",
      "tool",
      "--workdir=/ws/main",
      "--agent=main",
      "--guards",
      "--agent-workspace=/ws/main",
      "--",
      "-",
    ]);
    // A mapped workspace gives the origin channel...
    await api.tool("claude_launch", { prompt: "hi", workdir: "/srv/x" }, { ...ctx, workspaceDir: "/ws/seo" });
    assert.ok(argvOf().includes("--channel=telegram|seo-bot|111"));
    // ...unless the workdir has its own mapping, which clawunits then routes to.
    await api.tool(
      "claude_launch",
      { prompt: "hi", workdir: "/ws/seo/project-x" },
      { ...ctx, workspaceDir: "/ws/seo" },
    );
    assert.ok(!argvOf().some((a) => a.startsWith("--channel")));
  });

  it("claude_launch leaves the workdir of a resumed session to clawunits", async () => {
    const api = await setup();
    const display = LAUNCHED.replace("\n  Mode:", "\n  Resume: old1234 (forked)\n  Mode:");
    fake.setReply("launch", { stdout: { ...SESSION, resumedFrom: "old1234", forked: true, display } });
    const res = await api.tool(
      "claude_launch",
      { prompt: "go on", resume_session_id: "old1234", fork_session: true },
      ctx,
    );
    assert.ok(!argvOf().some((a) => a.startsWith("--workdir")));
    assert.ok(argvOf().includes("--resume=old1234") && argvOf().includes("--fork"));
    assert.equal(res.content[0].text, display);
  });

  it("claude_launch throws the guard's text when a guard blocks", async () => {
    const api = await setup();
    const blocked = "ERROR: Launch blocked — no autonomy skill found.\n\nBefore launching ...";
    fake.setReply("launch", { stdout: { error: blocked, code: "launch-blocked" }, exit: 8 });
    await assert.rejects(api.tool("claude_launch", { prompt: "hi" }, ctx), (e) => {
      assert.equal(e.message, blocked);
      assert.equal(e.name, "ToolInputError");
      return true;
    });
  });

  it("claude_launch rejects a missing prompt and a bad budget without calling the CLI", async () => {
    const api = await setup();
    await assert.rejects(api.tool("claude_launch", {}, ctx), { message: "Missing required parameter: prompt" });
    await assert.rejects(api.tool("claude_launch", { prompt: "x", max_budget_usd: "lots" }, ctx), {
      message: "max_budget_usd must be a number",
    });
    assert.equal(fake.calls().length, 0);
  });

  it("claude_respond", async () => {
    const RESPONDED =
      "Message sent to session fix-auth [a1b2c3d4].\n  (interrupted current turn first)\n" +
      '  Message: "Yes, use the refresh token"\nUse clawunits output to see the response.';
    const api = await setup();
    fake.setReply("respond", {
      stdout: {
        id: "a1b2c3d4",
        name: "fix-auth",
        status: "running",
        messageId: "m1",
        interrupted: true,
        autoResponds: 0,
        display: RESPONDED,
      },
    });
    const res = await api.tool(
      "claude_respond",
      { session: "fix-auth", message: "Yes, use the refresh token", interrupt: true, userInitiated: true },
      ctx,
    );
    assert.deepEqual(argvOf(), [
      "respond",
      "--json",
      "--surface",
      "tool",
      "--interrupt",
      "--user-initiated",
      "--agent=main",
      "--",
      "fix-auth",
      "-",
    ]);
    assert.equal(stdinOf(), "Yes, use the refresh token");
    assert.equal(res.content[0].text, RESPONDED);
    await api.tool("claude_respond", { session: "-odd", message: "ok" }, {});
    assert.deepEqual(argvOf(), ["respond", "--json", "--surface", "tool", "--", "-odd", "-"]);
    // A plan answer names the plan it answers: clawunits refuses it once that plan is stale.
    await api.tool("claude_respond", { session: "planner", message: "approve", planVersion: 2 }, {});
    assert.deepEqual(argvOf(), ["respond", "--json", "--surface", "tool", "--plan-version=2", "--", "planner", "-"]);
    assert.equal(stdinOf(), "approve");
    await assert.rejects(api.tool("claude_respond", { session: "p", message: "approve", planVersion: "two" }, {}), {
      message: "planVersion must be a number",
    });
  });

  it("claude_respond passes the auto-respond cap's text on as the error", async () => {
    const api = await setup();
    const cap =
      "⚠️ Auto-respond limit reached (10/10). Ask the user to provide the answer for session fix-auth. Then call claude_respond with their answer and set userInitiated: true to reset the counter.";
    fake.setReply("respond", { stdout: { error: cap, code: "limit" }, exit: 5 });
    await assert.rejects(api.tool("claude_respond", { session: "fix-auth", message: "y" }, ctx), { message: cap });
  });

  it("claude_fg and claude_bg stream to the conversation's channel", async () => {
    const api = await setup();
    const seo = { ...ctx, workspaceDir: "/ws/seo" };
    fake.setReply("fg", {
      stdout: {
        id: "a",
        name: "n",
        foreground: true,
        display: "Session n [a] now in foreground.\n...\nStreaming new output... Use claude_bg to detach.",
      },
    });
    const res = await api.tool("claude_fg", { session: "n", lines: 10 }, seo);
    assert.deepEqual(argvOf(), ["fg", "--json", "--surface", "tool", "--channel=telegram|seo-bot|111", "--lines=10", "--", "n"]);
    assert.match(res.content[0].text, /Use claude_bg to detach\.$/);
    await api.tool("claude_fg", { session: "n" }, { messageChannel: "telegram|77", agentAccountId: "acc" });
    assert.deepEqual(argvOf(), ["fg", "--json", "--surface", "tool", "--channel=telegram|acc|77", "--", "n"]);
    // No channel from the conversation: fallbackChannel.
    await api.tool("claude_fg", { session: "n" }, ctx);
    assert.deepEqual(argvOf(), ["fg", "--json", "--surface", "tool", "--channel=telegram|999", "--", "n"]);

    fake.setReply("bg", { stdout: { sessions: [], count: 0, display: "No session is currently in foreground." } });
    const bg = await api.tool("claude_bg", {}, seo);
    assert.deepEqual(argvOf(), ["bg", "--json", "--channel=telegram|seo-bot|111", "--"]);
    assert.equal(bg.content[0].text, "No session is currently in foreground.");
    await api.tool("claude_bg", { session: "n" }, seo);
    assert.deepEqual(argvOf(), ["bg", "--json", "--channel=telegram|seo-bot|111", "--", "n"]);
  });

  it("claude_bg without any channel says so instead of calling the CLI", async () => {
    const api = await setup({ clawunitsPath: fake.exe });
    await assert.rejects(api.tool("claude_bg", {}, { agentId: "main" }), { message: /No chat channel is known/ });
    assert.equal(fake.calls().length, 0);
    // claude_fg still shows the output (the CLI does not stream without a channel).
    await api.tool("claude_fg", { session: "n" }, { agentId: "main" });
    assert.deepEqual(argvOf(), ["fg", "--json", "--surface", "tool", "--", "n"]);
  });

  it("claude_kill acts as the agent; another agent's session is refused", async () => {
    const api = await setup();
    fake.setReply("kill", {
      stdout: {
        id: "a",
        name: "n",
        status: "killed",
        alreadyFinished: false,
        display: "Session n [a] has been terminated.",
      },
    });
    const res = await api.tool("claude_kill", { session: "n" }, ctx);
    assert.deepEqual(argvOf(), ["kill", "--json", "--agent=main", "--", "n"]);
    assert.equal(res.content[0].text, "Session n [a] has been terminated.");
    fake.setReply("kill", {
      stdout: { error: "session n [a] belongs to agent 'other', not 'main'", code: "forbidden" },
      exit: 9,
    });
    await assert.rejects(api.tool("claude_kill", { session: "n" }, ctx), {
      name: "ToolAuthorizationError",
      message: "session n [a] belongs to agent 'other', not 'main'",
    });
  });

  it("claude_output", async () => {
    const api = await setup();
    const OUTPUT = [
      "Session: fix-auth [a1b2c3d4] | Status: COMPLETED | Duration: 5m30s",
      "─".repeat(60),
      "Scripted reply: hi",
      "🔧 Bash — ls",
    ].join("\n");
    fake.setReply("output", {
      stdout: {
        id: "a1b2c3d4",
        name: "fix-auth",
        status: "completed",
        duration: "5m30s",
        lines: ["Scripted reply: hi", "🔧 Bash — ls"],
        display: OUTPUT,
      },
    });
    const res = await api.tool("claude_output", { session: "fix-auth", lines: 100 }, ctx);
    assert.deepEqual(argvOf(), ["output", "--json", "--lines=100", "--", "fix-auth"]);
    assert.equal(res.content[0].text, OUTPUT);
    await api.tool("claude_output", { session: "fix-auth", full: true, lines: 5 }, ctx);
    assert.deepEqual(argvOf(), ["output", "--json", "--full", "--", "fix-auth"]);
  });

  it("claude_sessions shows the calling agent's sessions", async () => {
    const api = await setup();
    const listing = [
      "🟢 fix-auth [a1b2c3d4] — RUNNING (2m15s) multi-turn",
      "   📁 /app",
      '   📝 "Fix the authentication bug in src/auth.ts — users are logged out after refresh, ..."',
      "   🔗 Claude ID: 550e8400-e29b-41d4-a716-446655440000",
      "   🔄 Resumed after restart: 1x, last at 2026-05-01T10:00:00Z",
    ].join("\n");
    fake.setReply("sessions", { stdout: { sessions: [SESSION], count: 1, display: listing } });
    const res = await api.tool("claude_sessions", { status: "running" }, ctx);
    assert.deepEqual(argvOf(), ["sessions", "--json", "--status=running", "--agent=main"]);
    assert.equal(res.content[0].text, listing);
    assert.deepEqual(res.details.sessions, [SESSION]);
    fake.setReply("sessions", { stdout: { sessions: [], count: 0, display: "No sessions found." } });
    assert.equal((await api.tool("claude_sessions", {}, {})).content[0].text, "No sessions found.");
    assert.deepEqual(argvOf(), ["sessions", "--json"]);
  });

  it("an answer without a display text is an error, not a text the plugin makes up", async () => {
    const api = await setup();
    fake.setReply("stats", { stdout: { totalLaunched: 2 } });
    await assert.rejects(api.tool("claude_stats", {}, ctx), {
      message: "clawunits stats answered without a display text",
    });
    assert.equal((await api.command("claude_stats", "")).text, "⚠️ clawunits stats answered without a display text");
  });

  it("claude_stats", async () => {
    const api = await setup();
    fake.setReply("stats", { stdout: { totalLaunched: 2, display: "📊 clawunits stats\n..." } });
    const res = await api.tool("claude_stats", {}, ctx);
    assert.deepEqual(argvOf(), ["stats", "--json"]);
    assert.equal(res.content[0].text, "📊 clawunits stats\n...");
    assert.equal(res.details.totalLaunched, 2);
  });

  it("claude_recover recovers the agent's own interrupted sessions", async () => {
    const api = await setup();
    const reply = { sessions: [{ id: "a1b2c3d4", name: "n", action: "recovered" }], count: 1, display: "Recovery…" };
    fake.setReply("recover", { stdout: reply });
    const res = await api.tool("claude_recover", {}, ctx);
    assert.deepEqual(argvOf(), ["recover", "--json", "--agent=main", "--"]);
    assert.equal(res.content[0].text, "Recovery…");
    assert.equal(res.details.count, 1);
    await api.tool("claude_recover", { session: "n", dry_run: true }, ctx);
    assert.deepEqual(argvOf(), ["recover", "--json", "--dry-run", "--agent=main", "--", "n"]);
  });

  it("claude_launch in a worktree, claude_worktree, claude_kill with remove_worktree", async () => {
    const api = await setup();
    const display = LAUNCHED.replace("\n  Mode:", "\n  Worktree: branch clawunits/fix-auth from dev\n  Mode:");
    fake.setReply("launch", { stdout: { ...SESSION, workdir: WORKTREE.path, worktree: WORKTREE, display } });
    const res = await api.tool("claude_launch", { prompt: "go", worktree: true, base: "dev" }, ctx);
    assert.deepEqual(argvOf(), [
      "launch",
      "--json",
      "--surface",
      "tool",
      "--workdir=/ws/main",
      "--agent=main",
      "--guards",
      "--agent-workspace=/ws/main",
      "--worktree",
      "--base=dev",
      "--",
      "-",
    ]);
    assert.equal(res.content[0].text, display);
    await api.tool("claude_launch", { prompt: "go", worktree: false, base: "" }, ctx);
    assert.ok(!argvOf().includes("--worktree") && !argvOf().some((a) => a.startsWith("--base")));

    fake.setReply("worktree", { stdout: { ...WORKTREE, merged: false, display: "🌿 fix-auth [a1b2c3d4] — RUNNING" } });
    const view = await api.tool("claude_worktree", { session: "fix-auth" }, ctx);
    assert.deepEqual(argvOf(), ["worktree", "--json", "--", "fix-auth"]);
    assert.equal(view.content[0].text, "🌿 fix-auth [a1b2c3d4] — RUNNING");
    assert.equal(view.details.merged, false);

    const message = "Session fix-auth [a1b2c3d4] has been terminated.\nWorktree kept: branch has 1 commit(s) not merged";
    fake.setReply("kill", {
      stdout: { id: "a1b2c3d4", worktree: { removed: false, reason: "..." }, display: message },
    });
    const killed = await api.tool("claude_kill", { session: "fix-auth", remove_worktree: true }, ctx);
    assert.deepEqual(argvOf(), ["kill", "--json", "--remove-worktree", "--agent=main", "--", "fix-auth"]);
    assert.equal(killed.content[0].text, message);
  });
});

describe("chat commands", () => {
  it("/claude launches with the chat as origin channel (no guards, no agent)", async () => {
    const api = await setup();
    fake.setReply("launch", {
      stdout: { ...SESSION, name: "x", status: "starting", prompt: "say hi", display: LAUNCHED },
    });
    const res = await api.command("claude", "--name x say hi");
    assert.deepEqual(argvOf(), ["launch", "--json", "--surface", "chat", "--name=x", "--channel=webchat|cli", "--", "-"]);
    assert.equal(stdinOf(), "say hi");
    // A command answers with the CLI's text, like the tool.
    assert.equal(res.text, LAUNCHED);
    await api.command("claude", "fix   the\nbug", { channel: "telegram", chatId: "-100", senderId: "7" });
    assert.deepEqual(argvOf(), ["launch", "--json", "--surface", "chat", "--channel=telegram|-100", "--", "-"]);
    assert.equal(stdinOf(), "fix   the\nbug");
  });

  it("/claude --worktree [--base] [--name], /claude_worktree, /claude_kill --remove-worktree", async () => {
    const api = await setup();
    const display = LAUNCHED.replace("\n  Mode:", "\n  Worktree: branch clawunits/fix-auth from dev\n  Mode:");
    fake.setReply("launch", { stdout: { ...SESSION, name: "x", status: "starting", worktree: WORKTREE, display } });
    const res = await api.command("claude", "--worktree --base dev --name x fix --it");
    assert.deepEqual(argvOf(), [
      "launch",
      "--json",
      "--surface",
      "chat",
      "--name=x",
      "--channel=webchat|cli",
      "--worktree",
      "--base=dev",
      "--",
      "-",
    ]);
    assert.equal(stdinOf(), "fix --it");
    assert.equal(res.text, display);
    await api.command("claude", "--notify status --name z go");
    assert.deepEqual(argvOf(), ["launch", "--json", "--surface", "chat", "--name=z", "--notify=status", "--channel=webchat|cli", "--", "-"]);
    await api.command("claude", "--name y --worktree go");
    assert.deepEqual(argvOf(), ["launch", "--json", "--surface", "chat", "--name=y", "--channel=webchat|cli", "--worktree", "--", "-"]);
    fake.setReply("worktree", { stdout: { display: "🌿 x [a] — RUNNING" } });
    assert.equal((await api.command("claude_worktree", "x")).text, "🌿 x [a] — RUNNING");
    assert.deepEqual(argvOf(), ["worktree", "--json", "--", "x"]);
    fake.setReply("kill", { stdout: { display: "Session x [a] is already completed.\nWorktree removed: ..." } });
    assert.match((await api.command("claude_kill", "--remove-worktree x")).text, /Worktree removed/);
    assert.deepEqual(argvOf(), ["kill", "--json", "--remove-worktree", "--", "x"]);
  });

  it("/claude_merge [--squash] [--into] [--resolve], /claude_pr [--draft] [--base], and their tools", async () => {
    const api = await setup();
    fake.setReply("merge", { stdout: { merged: true, display: "🔀 [x] merged clawunits/x into main (commit abc)" } });
    const res = await api.command("claude_merge", "--squash --into release --resolve x");
    assert.equal(res.text, "🔀 [x] merged clawunits/x into main (commit abc)");
    assert.deepEqual(argvOf(), [
      "merge",
      "--json",
      "--squash",
      "--into=release",
      "--resolve",
      "--channel=webchat|cli",
      "--",
      "x",
    ]);
    await api.command("claude_merge", "x");
    assert.deepEqual(argvOf(), ["merge", "--json", "--channel=webchat|cli", "--", "x"]);
    fake.setReply("pr", { stdout: { url: "https://github.com/o/r/pull/7", display: "🔗 [x] pull request opened" } });
    assert.equal((await api.command("claude_pr", "--draft --base dev x")).text, "🔗 [x] pull request opened");
    assert.deepEqual(argvOf(), ["pr", "--json", "--base=dev", "--draft", "--", "x"]);
    for (const bad of ["", "--into", "--squash", "a b", "--bogus x"]) {
      assert.match((await api.command("claude_merge", bad)).text, /^Usage: \/claude_merge/, bad);
    }
    assert.match((await api.command("claude_pr", "--base")).text, /^Usage: \/claude_pr/);

    const ctx = { agentId: "main", workspaceDir: "/ws/seo", messageChannel: "telegram|111" };
    await api.tool("claude_merge", { session: "x", resolve: true, instructions: "keep ours" }, ctx);
    assert.deepEqual(argvOf(), [
      "merge",
      "--json",
      "--resolve",
      "--instructions=keep ours",
      "--channel=telegram|111",
      "--agent=main",
      "--",
      "x",
    ]);
    await api.tool("claude_merge", { session: "x", instructions: "ignored without resolve" }, ctx);
    assert.ok(!argvOf().some((a) => a.startsWith("--instructions")));
    await api.tool("claude_pr", { session: "x", remote: "up" }, ctx);
    assert.deepEqual(argvOf(), ["pr", "--json", "--remote=up", "--agent=main", "--", "x"]);
  });

  it("/claude_notify, claude_notify and claude-code.notify change a session's notify policy as its caller", async () => {
    const api = await setup();
    const display = "Notifications of x [a]: status";
    fake.setReply("notify", { stdout: { id: "a", name: "x", notify: "status", effective: "status", display } });
    assert.equal((await api.command("claude_notify", "x status")).text, display);
    assert.deepEqual(argvOf(), ["notify", "--json", "--", "x", "status"]);
    assert.match((await api.command("claude_notify", "x loud")).text, /^Usage: \/claude_notify/);
    assert.match((await api.command("claude_notify", "x")).text, /^Usage: \/claude_notify/);
    const res = await api.tool("claude_notify", { session: "x", policy: "quiet" }, { agentId: "main" });
    assert.equal(res.content[0].text, display);
    assert.deepEqual(argvOf(), ["notify", "--json", "--agent=main", "--", "x", "quiet"]);
    const answer = await api.rpc("claude-code.notify", { session: "x", policy: "default" });
    assert.equal(answer.ok, true);
    assert.deepEqual(argvOf(), ["notify", "--json", "--", "x", "default"]);
    fake.setReply("launch", { stdout: { ...SESSION, display: "launched" } });
    await api.tool("claude_launch", { prompt: "p", notify: "status" }, { agentId: "main" });
    assert.ok(argvOf().includes("--notify=status"), argvOf().join(" "));
  });

  it("/claude --priority and claude_launch priority: the CLI's queued reply is the answer", async () => {
    const api = await setup();
    const display = "🕒 [x] queued (2 ahead)\n  ID: a1b2c3d4\n  Prompt: \"go\"";
    fake.setReply("launch", { stdout: { ...SESSION, name: "x", status: "queued", queuePosition: 3, display } });
    const res = await api.command("claude", "--priority --name x go");
    assert.deepEqual(argvOf(), [
      "launch", "--json", "--surface", "chat", "--name=x", "--channel=webchat|cli", "--priority", "--", "-",
    ]);
    assert.equal(res.text, display);
    await api.tool("claude_launch", { prompt: "go", priority: true }, { agentId: "main", workspaceDir: "/ws/main" });
    assert.ok(argvOf().includes("--priority"));
    await api.rpc("claude-code.launch", { prompt: "go", priority: true });
    assert.ok(argvOf().includes("--priority"));
    await api.rpc("claude-code.resume", { session: "old", priority: true });
    assert.ok(argvOf().includes("--priority") && argvOf().includes("--resume=old"));
  });

  it("answers usage texts instead of calling the CLI with nothing", async () => {
    const api = await setup();
    assert.equal(
      (await api.command("claude", "  ")).text,
      "Usage: /claude [--name <name>] [--worktree [--base <branch>]] [--notify all|status|quiet] [--priority] <prompt>",
    );
    assert.match((await api.command("claude", "--worktree")).text, /^Usage: \/claude /);
    assert.match((await api.command("claude_kill", "--remove-worktree")).text, /^Usage: \/claude_kill/);
    assert.match((await api.command("claude_worktree", "")).text, /^Usage: \/claude_worktree/);
    assert.match((await api.command("claude_fg", "")).text, /^Usage: \/claude_fg/);
    assert.match((await api.command("claude_kill", "")).text, /^Usage: \/claude_kill/);
    assert.match((await api.command("claude_respond", "only-a-ref")).text, /^Usage: \/claude_respond/);
    assert.match((await api.command("claude_resume", "")).text, /^Usage: \/claude_resume/);
    assert.match((await api.command("claude_recover", "--all")).text, /^Usage: \/claude_recover/);
    assert.match((await api.command("claude_recover", "a b")).text, /^Usage: \/claude_recover/);
    assert.equal(fake.calls().length, 0);
  });

  it("/claude_sessions, /claude_stats, /claude_kill", async () => {
    const api = await setup();
    fake.setReply("sessions", { stdout: { sessions: [], count: 0, display: "No sessions found." } });
    assert.equal((await api.command("claude_sessions", "")).text, "No sessions found.");
    assert.deepEqual(argvOf(), ["sessions", "--json"]);
    fake.setReply("stats", { stdout: { display: "📊 stats" } });
    assert.equal((await api.command("claude_stats", "")).text, "📊 stats");
    fake.setReply("kill", { stdout: { display: "Session n [a] has been terminated." } });
    assert.equal((await api.command("claude_kill", "n")).text, "Session n [a] has been terminated.");
    assert.deepEqual(argvOf(), ["kill", "--json", "--", "n"]);
  });

  it("/claude_recover [--dry-run] [session]", async () => {
    const api = await setup();
    fake.setReply("recover", { stdout: { sessions: [], count: 0, display: "No interrupted sessions to recover." } });
    assert.equal((await api.command("claude_recover", "")).text, "No interrupted sessions to recover.");
    assert.deepEqual(argvOf(), ["recover", "--json", "--"]);
    await api.command("claude_recover", "--dry-run");
    assert.deepEqual(argvOf(), ["recover", "--json", "--dry-run", "--"]);
    await api.command("claude_recover", "--dry-run n");
    assert.deepEqual(argvOf(), ["recover", "--json", "--dry-run", "--", "n"]);
  });

  it("/claude_fg and /claude_bg use the chat's channel", async () => {
    const api = await setup();
    fake.setReply("fg", {
      stdout: { display: "Session n [a] now in foreground.\nStreaming new output... Use claude_bg to detach." },
    });
    const res = await api.command("claude_fg", "n");
    assert.deepEqual(argvOf(), ["fg", "--json", "--surface", "chat", "--channel=webchat|cli", "--", "n"]);
    assert.match(res.text, /Use claude_bg to detach\.$/);
    fake.setReply("bg", { stdout: { display: "Moved to background: n [a]" } });
    assert.equal((await api.command("claude_bg", "")).text, "Moved to background: n [a]");
    assert.deepEqual(argvOf(), ["bg", "--json", "--channel=webchat|cli", "--"]);
    await api.command("claude_bg", "n", { channel: "telegram", chatId: "5" });
    assert.deepEqual(argvOf(), ["bg", "--json", "--channel=telegram|5", "--", "n"]);
  });

  it("/claude_respond is always user-initiated", async () => {
    const api = await setup();
    const display =
      "Message sent to session n [a].\n  (interrupted current turn first)\n" +
      '  Message: "stop, only README please"\nUse clawunits output to see the response.';
    fake.setReply("respond", { stdout: { id: "a", name: "n", interrupted: true, display } });
    const res = await api.command("claude_respond", "--interrupt n stop, only README please");
    assert.deepEqual(argvOf(), ["respond", "--json", "--surface", "chat", "--interrupt", "--user-initiated", "--", "n", "-"]);
    assert.equal(stdinOf(), "stop, only README please");
    assert.equal(res.text, display);
    await api.command("claude_respond", "n yes");
    assert.deepEqual(argvOf(), ["respond", "--json", "--surface", "chat", "--user-initiated", "--", "n", "-"]);
  });

  it("/claude_resume: a ref, --fork, --list", async () => {
    const api = await setup();
    const display = LAUNCHED.replace("\n  Mode:", "\n  Resume: a1b2\n  Mode:");
    fake.setReply("launch", { stdout: { ...SESSION, resumedFrom: "a1b2", forked: false, display } });
    let res = await api.command("claude_resume", "fix-auth");
    assert.deepEqual(argvOf(), ["launch", "--json", "--surface", "chat", "--channel=webchat|cli", "--resume=fix-auth", "--", "-"]);
    assert.equal(stdinOf(), DEFAULT_RESUME_PROMPT);
    assert.equal(res.text, display);
    await api.command("claude_resume", "--fork fix-auth try JWT instead");
    assert.deepEqual(argvOf(), ["launch", "--json", "--surface", "chat", "--channel=webchat|cli", "--resume=fix-auth", "--fork", "--", "-"]);
    assert.equal(stdinOf(), "try JWT instead");
    const none = "No resumable sessions found. Sessions are persisted after completion.";
    fake.setReply("resume", { stdout: { sessions: [], count: 0, display: none } });
    res = await api.command("claude_resume", "--list");
    assert.deepEqual(argvOf(), ["resume", "--list", "--json"]);
    assert.equal(res.text, none);
  });

  it("turns every failure into a readable reply", async () => {
    const api = await setup();
    fake.setReply("kill", { stdout: { error: "unknown session 'nope'", code: "not-found" }, exit: 3 });
    assert.deepEqual(await api.command("claude_kill", "nope"), { text: "⚠️ unknown session 'nope'" });
    const broken = makeFakeApi({
      pluginConfig: { clawunitsPath: "/nonexistent/clawunits" },
      registrationMode: "discovery",
    });
    plugin.register(broken);
    const res = await broken.command("claude_sessions", "");
    assert.match(res.text, /^⚠️ clawunits executable not found: \/nonexistent\/clawunits/);
  });
});

describe("gateway RPC", () => {
  it("claude-code.launch takes camelCase and snake_case alike", async () => {
    const api = await setup();
    const expected = [
      "launch",
      "--json",
      "--name=n",
      "--workdir=/app",
      "--model=sonnet",
      "--max-budget-usd=2",
      "--system-prompt=sp",
      "--allowed-tools=Read,Write",
      "--resume=r",
      "--fork",
      "--multi-turn-disabled",
      "--permission-mode=acceptEdits",
      "--channel=telegram|1",
      "--agent=ops",
      "--",
      "-",
    ];
    const common = {
      prompt: "do it",
      name: "n",
      workdir: "/app",
      model: "sonnet",
      originChannel: "telegram|1",
      agentId: "ops",
    };
    let res = await api.rpc("claude-code.launch", {
      ...common,
      maxBudgetUsd: 2,
      systemPrompt: "sp",
      allowedTools: ["Read", "Write"],
      permissionMode: "acceptEdits",
      multiTurnDisabled: true,
      resumeSessionId: "r",
      forkSession: true,
    });
    assert.equal(res.ok, true);
    assert.deepEqual(argvOf(), expected);
    assert.equal(stdinOf(), "do it");
    res = await api.rpc("claude-code.launch", {
      ...common,
      max_budget_usd: 2,
      system_prompt: "sp",
      allowed_tools: ["Read", "Write"],
      permission_mode: "acceptEdits",
      multi_turn_disabled: true,
      resume_session_id: "r",
      fork_session: true,
    });
    assert.deepEqual(argvOf(), expected);
    assert.deepEqual(res.payload.argv, expected);
  });

  it("claude-code.launch: the seed's default origin 'gateway' means none; no guards", async () => {
    const api = await setup();
    await api.rpc("claude-code.launch", { prompt: "x", originChannel: "gateway" });
    assert.deepEqual(argvOf(), ["launch", "--json", "--", "-"]);
  });

  it("reports errors as respond(false, undefined, {code, message})", async () => {
    const api = await setup();
    let res = await api.rpc("claude-code.launch", {});
    assert.deepEqual(res, {
      ok: false,
      payload: undefined,
      error: { code: "invalid-input", message: "Missing required parameter: prompt" },
    });
    fake.setReply("output", { stdout: { error: "unknown session 'zz'", code: "not-found" }, exit: 3 });
    res = await api.rpc("claude-code.output", { session: "zz" });
    assert.deepEqual(res, {
      ok: false,
      payload: undefined,
      error: { code: "not-found", message: "unknown session 'zz'" },
    });
    res = await api.rpc("claude-code.kill", {});
    assert.equal(res.error.message, "Missing required parameter: session");
    res = await api.rpc("claude-code.respond", { session: "s", message: { text: "hi" } });
    assert.deepEqual(res.error, { code: "invalid-input", message: "message must be a string" });
    assert.equal(fake.calls().length, 1);
  });

  it("every other method maps its parameters", async () => {
    const api = await setup();
    const cases = [
      [
        "claude-code.respond",
        { session: "s", message: "m", interrupt: true, userInitiated: true },
        ["respond", "--json", "--interrupt", "--user-initiated", "--", "s", "-"],
        "m",
      ],
      [
        "claude-code.respond",
        { id: "s", message: "m", user_initiated: true, agent_id: "a" },
        ["respond", "--json", "--user-initiated", "--agent=a", "--", "s", "-"],
        "m",
      ],
      [
        "claude-code.respond",
        { session: "s", message: "reject add tests", plan_version: 3 },
        ["respond", "--json", "--plan-version=3", "--", "s", "-"],
        "reject add tests",
      ],
      [
        "claude-code.fg",
        { session: "s", channel: "telegram|5", lines: 12 },
        ["fg", "--json", "--channel=telegram|5", "--lines=12", "--", "s"],
      ],
      [
        "claude-code.fg",
        { id: "s", origin_channel: "telegram|5" },
        ["fg", "--json", "--channel=telegram|5", "--", "s"],
      ],
      ["claude-code.bg", { channel: "telegram|5" }, ["bg", "--json", "--channel=telegram|5", "--"]],
      [
        "claude-code.bg",
        { session: "s", originChannel: "telegram|5" },
        ["bg", "--json", "--channel=telegram|5", "--", "s"],
      ],
      ["claude-code.kill", { session: "s" }, ["kill", "--json", "--", "s"]],
      [
        "claude-code.kill",
        { session: "s", removeWorktree: true },
        ["kill", "--json", "--remove-worktree", "--", "s"],
      ],
      ["claude-code.kill", { id: "s", remove_worktree: true }, ["kill", "--json", "--remove-worktree", "--", "s"]],
      ["claude-code.worktree", { session: "s" }, ["worktree", "--json", "--", "s"]],
      ["claude-code.worktree", { id: "s" }, ["worktree", "--json", "--", "s"]],
      [
        "claude-code.launch",
        { prompt: "p", workdir: "/repo", worktree: true, base: "main" },
        ["launch", "--json", "--workdir=/repo", "--worktree", "--base=main", "--", "-"],
        "p",
      ],
      ["claude-code.kill", { id: "s", agentId: "main" }, ["kill", "--json", "--agent=main", "--", "s"]],
      ["claude-code.output", { session: "s", lines: 7 }, ["output", "--json", "--lines=7", "--", "s"]],
      ["claude-code.output", { id: "s", full: true }, ["output", "--json", "--full", "--", "s"]],
      ["claude-code.sessions", {}, ["sessions", "--json"]],
      [
        "claude-code.sessions",
        { status: "running", agentId: "main", channel: "telegram|5", all: true },
        ["sessions", "--json", "--status=running", "--agent=main", "--channel=telegram|5", "--all"],
      ],
      [
        "claude-code.sessions",
        { agent_id: "main", include_archived: true },
        ["sessions", "--json", "--agent=main", "--all"],
      ],
      ["claude-code.stats", {}, ["stats", "--json"]],
      ["claude-code.recover", {}, ["recover", "--json", "--"]],
      [
        "claude-code.recover",
        { session: "s", dryRun: true, agentId: "main" },
        ["recover", "--json", "--dry-run", "--agent=main", "--", "s"],
      ],
      ["claude-code.recover", { id: "s", dry_run: true }, ["recover", "--json", "--dry-run", "--", "s"]],
      ["claude-code.resume", { list: true }, ["resume", "--list", "--json"]],
      [
        "claude-code.resume",
        { session: "s", prompt: "more", fork: true, name: "n2", originChannel: "telegram|5" },
        ["launch", "--json", "--name=n2", "--channel=telegram|5", "--resume=s", "--fork", "--", "-"],
        "more",
      ],
      [
        "claude-code.resume",
        { resume_session_id: "s", fork_session: true },
        ["launch", "--json", "--resume=s", "--fork", "--", "-"],
        DEFAULT_RESUME_PROMPT,
      ],
    ];
    for (const [method, params, argv, stdin] of cases) {
      const res = await api.rpc(method, params);
      assert.equal(res.ok, true, `${method} ${JSON.stringify(params)}: ${JSON.stringify(res.error)}`);
      assert.deepEqual(argvOf(), argv, `${method} ${JSON.stringify(params)}`);
      if (stdin !== undefined) assert.equal(stdinOf(), stdin);
    }
  });

  it("claude-code.bg without a channel is refused", async () => {
    const api = await setup();
    const res = await api.rpc("claude-code.bg", { session: "s" });
    assert.equal(res.ok, false);
    assert.match(res.error.message, /No chat channel is known/);
  });
});

describe("who calls (the CLI's root options; clawunits applies the authority rule)", () => {
  const owners = { commands: { ownerAllowFrom: ["telegram:111"] } };

  it("a command passes its sender, OpenClaw's owner word and the gateway's owner list", async () => {
    const api = await setup();
    await api.command("claude_kill", "x", { channel: "telegram", accountId: "main-bot", senderId: "555", config: owners });
    assert.deepEqual(fake.lastCall().caller, [
      "--via", "command", "--sender", "telegram|main-bot|555", "--gateway-owner", "telegram:111",
    ]);
    assert.deepEqual(argvOf(), ["kill", "--json", "--", "x"]);
  });

  it("a tool passes the agent run's requester, or none", async () => {
    const api = await setup();
    await api.tool("claude_sessions", {}, { messageChannel: "telegram", requesterSenderId: "555", senderIsOwner: true });
    assert.deepEqual(fake.lastCall().caller, ["--via", "tool", "--sender", "telegram|default|555", "--sender-is-owner"]);
    await api.tool("claude_sessions", {}, {});
    assert.deepEqual(fake.lastCall().caller, ["--via", "tool"]);
  });

  it("an RPC call is a gateway client's (OpenClaw checked its scope)", async () => {
    const api = await setup();
    await api.rpc("claude-code.sessions", {});
    assert.deepEqual(fake.lastCall().caller, ["--via", "rpc"]);
  });

  it("a refusal is the command's one-line reply", async () => {
    const api = await setup();
    const line = "only the gateway's owners can kill Claude Code sessions; ask one to add you to allowedSenders";
    fake.setReply("kill", { stdout: { error: line, code: "not-authorized" }, stderr: `clawunits: error: ${line}\n`, exit: 12 });
    assert.equal((await api.command("claude_kill", "x", { channel: "telegram", senderId: "9" })).text, `⚠️ ${line}`);
  });
});
