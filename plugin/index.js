// clawunits for OpenClaw: agent tools, chat commands and gateway RPC methods over the clawunits CLI.
//
// The plugin holds no session logic. Every surface turns its parameters (and what OpenClaw's context says
// about the caller) into one `clawunits ... --json` call, and its JSON into a reply. Sessions live in systemd
// user units and outlive the gateway; clawunits' notifier delivers their notifications.

import { ClawunitsError, cliSettings, runClawunits } from "./lib/cli.js";
import {
  channelString,
  commandChannel,
  commandStreamChannel,
  launchChannel,
  streamChannel,
  toolAgent,
} from "./lib/context.js";
import { foregroundText, launchedText, outputText, respondedText, resumableText, sessionsText } from "./lib/format.js";

export { ClawunitsError, runClawunits } from "./lib/cli.js";

export const PLUGIN_ID = "clawunits";
export const TOOL_NAMES = [
  "claude_launch",
  "claude_respond",
  "claude_fg",
  "claude_bg",
  "claude_kill",
  "claude_output",
  "claude_sessions",
  "claude_stats",
  "claude_recover",
  "claude_worktree",
];
export const DEFAULT_RESUME_PROMPT = "Continue where you left off.";
const PERMISSION_MODES = ["default", "plan", "acceptEdits", "bypassPermissions"];
const STATUSES = ["all", "running", "waiting", "completed", "failed", "killed", "interrupted"];

// ------------------------------------------------------------------------------------ parameter helpers

const invalid = (message) => new ClawunitsError(message, { code: "invalid-input" });

/** The first of `keys` present in `params` (RPC callers may use camelCase or snake_case). */
function pick(params, ...keys) {
  for (const key of keys) {
    if (params && params[key] !== undefined && params[key] !== null) return params[key];
  }
  return undefined;
}

function str(value) {
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  if (typeof value !== "string") return undefined;
  return value.trim() || undefined;
}

function num(value, name) {
  if (value === undefined || value === null || value === "") return undefined;
  const n = typeof value === "string" ? Number(value.trim()) : value;
  if (typeof n !== "number" || !Number.isFinite(n)) throw invalid(`${name} must be a number`);
  return n;
}

function bool(value) {
  return value === true || value === "true" || value === 1 || value === "1";
}

function list(value) {
  if (Array.isArray(value)) return value.map((v) => String(v).trim()).filter(Boolean);
  if (typeof value === "string")
    return value
      .split(",")
      .map((v) => v.trim())
      .filter(Boolean);
  return [];
}

function required(value, name) {
  if (value === undefined || value === null || (typeof value === "string" && !value.trim())) {
    throw invalid(`Missing required parameter: ${name}`);
  }
  if (typeof value !== "string" && typeof value !== "number") throw invalid(`${name} must be a string`);
  return value;
}

/** A channel given explicitly (RPC): the seed's placeholder words mean none; anything else clawunits checks. */
function explicitChannel(value) {
  const s = str(value);
  return s && !["unknown", "gateway", "command"].includes(s) ? s : undefined;
}

// `--name=value` keeps a value that starts with "-" a value; "--" ends the options before the positionals.
const opt = (name, value) => (value === undefined || value === null || value === "" ? [] : [`--${name}=${value}`]);
const flag = (name, on) => (on ? [`--${name}`] : []);

// ------------------------------------------------------------------------------- operations (CLI calls)

/**
 * The clawunits operations, each one CLI call. `p` holds normalized parameters (camelCase); user text (a
 * prompt, a message) always goes on stdin.
 */
export function operations(run) {
  return {
    launch(p, signal) {
      required(p.prompt, "prompt");
      const args = [
        "launch",
        "--json",
        ...opt("name", p.name),
        ...opt("workdir", p.workdir),
        ...opt("model", p.model),
        ...opt("max-budget-usd", p.maxBudgetUsd),
        ...opt("system-prompt", p.systemPrompt),
        ...opt("allowed-tools", p.allowedTools?.length ? p.allowedTools.join(",") : undefined),
        ...opt("permission-mode", p.permissionMode),
        ...flag("multi-turn-disabled", p.multiTurnDisabled),
        ...opt("channel", p.channel),
        ...opt("resume", p.resume),
        ...flag("fork", p.fork),
        ...opt("agent", p.agent),
        ...flag("guards", p.guards),
        ...opt("agent-workspace", p.guards ? p.agentWorkspace : undefined),
        ...opt("memory-max", p.memoryMax),
        ...opt("cpu-quota", p.cpuQuota),
        ...opt("tasks-max", p.tasksMax),
        ...opt("runtime-max", p.runtimeMax),
        ...flag("worktree", p.worktree),
        ...opt("base", p.base),
        "--",
        "-",
      ];
      return run(args, { stdin: p.prompt, signal });
    },
    respond(p, signal) {
      required(p.session, "session");
      required(p.message, "message");
      const args = [
        "respond",
        "--json",
        ...flag("interrupt", p.interrupt),
        ...flag("user-initiated", p.userInitiated),
        ...opt("plan-version", p.planVersion),
        ...opt("agent", p.agent),
        "--",
        String(p.session),
        "-",
      ];
      return run(args, { stdin: p.message, signal });
    },
    fg(p, signal) {
      required(p.session, "session");
      const args = ["fg", "--json", ...opt("channel", p.channel), ...opt("lines", p.lines), "--", String(p.session)];
      return run(args, { signal });
    },
    bg(p, signal) {
      if (!p.channel) {
        throw invalid(
          "No chat channel is known for this conversation, so there is no foreground to leave " +
            "(map the agent's workspace in agentChannels or set fallbackChannel).",
        );
      }
      const args = ["bg", "--json", ...opt("channel", p.channel), "--", ...(p.session ? [String(p.session)] : [])];
      return run(args, { signal });
    },
    kill(p, signal) {
      required(p.session, "session");
      const args = ["kill", "--json", ...flag("remove-worktree", p.removeWorktree), ...opt("agent", p.agent)];
      return run([...args, "--", String(p.session)], { signal });
    },
    worktree(p, signal) {
      required(p.session, "session");
      return run(["worktree", "--json", "--", String(p.session)], { signal });
    },
    output(p, signal) {
      required(p.session, "session");
      const size = p.full ? ["--full"] : opt("lines", p.lines);
      return run(["output", "--json", ...size, "--", String(p.session)], { signal });
    },
    sessions(p = {}, signal) {
      const args = [
        "sessions",
        "--json",
        ...opt("status", p.status),
        ...opt("agent", p.agent),
        ...opt("channel", p.channel),
        ...flag("all", p.all),
      ];
      return run(args, { signal });
    },
    stats(_p, signal) {
      return run(["stats", "--json"], { signal });
    },
    // Sessions a shutdown interrupted run again as themselves; with `session`, only that one.
    recover(p = {}, signal) {
      const args = ["recover", "--json", ...flag("dry-run", p.dryRun), ...opt("agent", p.agent), "--"];
      return run(p.session ? [...args, String(p.session)] : args, { signal });
    },
    resumable(_p, signal) {
      return run(["resume", "--list", "--json"], { signal });
    },
    // A resume is a launch with --resume (its prompt on stdin); workdir and model default to the session's.
    resume(p, signal) {
      required(p.session, "session");
      return this.launch(
        {
          prompt: str(p.prompt) ?? DEFAULT_RESUME_PROMPT,
          name: p.name,
          channel: p.channel,
          resume: String(p.session),
          fork: p.fork,
          agent: p.agent,
        },
        signal,
      );
    },
    syncConfig(config, signal) {
      return run(["config", "sync", "--json"], { stdin: JSON.stringify(config ?? {}), signal });
    },
  };
}

// ------------------------------------------------------------------------------------------ agent tools

const S = (description, extra = {}) => ({ type: "string", description, ...extra });
const N = (description, extra = {}) => ({ type: "number", description, ...extra });
const B = (description) => ({ type: "boolean", description });
const SESSION = S("Session name or ID");

function toolSpecs() {
  return {
    claude_launch: {
      label: "Launch Claude Code",
      description:
        "Launch a Claude Code session in the background (its own systemd unit) to work on a development task. " +
        "Sessions are multi-turn by default: send follow-ups with claude_respond. Runs pre-launch safety checks.",
      parameters: {
        type: "object",
        additionalProperties: false,
        required: ["prompt"],
        properties: {
          prompt: S("The task prompt to execute"),
          name: S("Short kebab-case name (e.g. fix-auth); generated from the prompt if omitted"),
          workdir: S("Working directory (absolute); defaults to the agent workspace"),
          model: S("Model name (e.g. sonnet, opus); defaults to the configured defaultModel"),
          max_budget_usd: N("Maximum budget in USD (default: defaultBudgetUsd, 5)", { exclusiveMinimum: 0 }),
          system_prompt: S("Additional system prompt appended to Claude Code's own"),
          allowed_tools: { type: "array", items: { type: "string" }, description: "Tools allowed without asking" },
          resume_session_id: S("Resume a previous session: name, ID or Claude session UUID"),
          fork_session: B("With resume_session_id: fork into a new conversation instead of continuing it"),
          multi_turn_disabled: B("Fire-and-forget: the session ends after its first turn (default false)"),
          permission_mode: S("Permission mode (default: the configured permissionMode)", { enum: PERMISSION_MODES }),
          memory_max: S("Memory limit, e.g. 2G (default: the configured memoryMax, 4G)"),
          cpu_quota: S("CPU limit, e.g. 150% (default: the configured cpuQuota, 200%)"),
          tasks_max: S("Process/thread limit (default: the configured tasksMax, 1024)"),
          runtime_max: S("Stop the session after this long, e.g. 2h (default: the configured runtimeMax, 24h)"),
          worktree: B("Work in a new git worktree on branch clawunits/<name>, leaving the checkout untouched"),
          base: S("With worktree: the branch to start from (default: the workdir's current branch)"),
        },
      },
    },
    claude_respond: {
      label: "Respond to Claude Code",
      description:
        "Send a follow-up message to a running multi-turn Claude Code session (also answers its questions and " +
        "permission requests). Set userInitiated when relaying the user's own words. A session waiting for plan " +
        "approval takes 'approve' (or 'approve default') or 'reject <what to change>'; pass its planVersion.",
      parameters: {
        type: "object",
        additionalProperties: false,
        required: ["session", "message"],
        properties: {
          session: SESSION,
          message: S("The message to send"),
          interrupt: B("Interrupt the current turn before sending, to redirect the session"),
          userInitiated: B("True when the message comes from the user; resets the auto-respond counter"),
          planVersion: N("The plan version this answer is for (📋 Plan ready … plan vN); a stale one is refused", {
            minimum: 1,
          }),
        },
      },
    },
    claude_fg: {
      label: "Foreground Claude Code session",
      description:
        "Bring a Claude Code session to the foreground: show what this conversation missed, then stream its new " +
        "output here.",
      parameters: {
        type: "object",
        additionalProperties: false,
        required: ["session"],
        properties: { session: SESSION, lines: N("Recent entries shown when there is no catch-up (default 30)") },
      },
    },
    claude_bg: {
      label: "Background Claude Code session",
      description:
        "Stop streaming a Claude Code session here (or, without session, every session in the foreground of this " +
        "conversation).",
      parameters: {
        type: "object",
        additionalProperties: false,
        properties: { session: S("Session name or ID; omit to detach every foreground session") },
      },
    },
    claude_kill: {
      label: "Kill Claude Code session",
      description: "Terminate a Claude Code session and every process it started.",
      parameters: {
        type: "object",
        additionalProperties: false,
        required: ["session"],
        properties: {
          session: SESSION,
          remove_worktree: B("Then remove its worktree and branch if merged into the base and clean (else kept)"),
        },
      },
    },
    claude_output: {
      label: "Claude Code output",
      description: "Show recent output of a Claude Code session (read-only).",
      parameters: {
        type: "object",
        additionalProperties: false,
        required: ["session"],
        properties: {
          session: SESSION,
          lines: N("How many recent entries to show (default 50)"),
          full: B("Show all output of the session"),
        },
      },
    },
    claude_sessions: {
      label: "Claude Code sessions",
      description: "List Claude Code sessions with their status (an agent sees the sessions it launched).",
      parameters: {
        type: "object",
        additionalProperties: false,
        properties: { status: S("Filter by status (default all; running = not finished)", { enum: STATUSES }) },
      },
    },
    claude_stats: {
      label: "Claude Code stats",
      description: "Usage metrics: sessions by status, total cost, average duration, most expensive session.",
      parameters: { type: "object", additionalProperties: false, properties: {} },
    },
    claude_recover: {
      label: "Recover Claude Code sessions",
      description:
        "Resume the Claude Code sessions a reboot or crash interrupted (status interrupted), each as the same " +
        "session with its conversation, workdir, model and remaining budget. Killed and finished sessions are " +
        "left alone. Normally this runs by itself when the machine starts.",
      parameters: {
        type: "object",
        additionalProperties: false,
        properties: {
          session: S("Only this session (name or ID); omit for every interrupted session"),
          dry_run: B("Only say what would be recovered"),
        },
      },
    },
    claude_worktree: {
      label: "Claude Code worktree",
      description:
        "Show the git worktree of a session launched with worktree: its branch and base, whether it is merged, " +
        "its commits, uncommitted changes and diff stat against the base (read-only).",
      parameters: {
        type: "object",
        additionalProperties: false,
        required: ["session"],
        properties: { session: SESSION },
      },
    },
  };
}

/** What each tool runs: (params, ctx, config, ops, signal) → {text, details}. */
const TOOL_HANDLERS = {
  async claude_launch(params, ctx, config, ops, signal) {
    const resume = str(params.resume_session_id);
    // Resuming: leave the workdir to clawunits (the resumed session's), where Claude finds the conversation.
    const workdir = str(params.workdir) ?? (resume ? undefined : str(ctx.workspaceDir));
    const data = await ops.launch(
      {
        prompt: params.prompt,
        name: str(params.name),
        workdir,
        model: str(params.model),
        maxBudgetUsd: num(params.max_budget_usd, "max_budget_usd"),
        systemPrompt: str(params.system_prompt),
        allowedTools: list(params.allowed_tools),
        permissionMode: str(params.permission_mode),
        multiTurnDisabled: bool(params.multi_turn_disabled),
        channel: launchChannel(ctx, config, workdir),
        resume,
        fork: bool(params.fork_session),
        agent: toolAgent(ctx),
        guards: true,
        agentWorkspace: str(ctx.workspaceDir),
        memoryMax: str(params.memory_max),
        cpuQuota: str(params.cpu_quota),
        tasksMax: str(params.tasks_max),
        runtimeMax: str(params.runtime_max),
        worktree: bool(params.worktree),
        base: str(params.base),
      },
      signal,
    );
    return { text: launchedText(data, "tool"), details: data };
  },
  async claude_respond(params, ctx, _config, ops, signal) {
    const data = await ops.respond(
      {
        session: str(params.session),
        message: params.message,
        interrupt: bool(params.interrupt),
        userInitiated: bool(params.userInitiated ?? params.user_initiated),
        planVersion: num(params.planVersion ?? params.plan_version, "planVersion"),
        agent: toolAgent(ctx),
      },
      signal,
    );
    return { text: respondedText(data, params.message, "tool"), details: data };
  },
  async claude_fg(params, ctx, config, ops, signal) {
    const data = await ops.fg(
      { session: str(params.session), lines: num(params.lines, "lines"), channel: streamChannel(ctx, config) },
      signal,
    );
    return { text: foregroundText(data, "tool"), details: data };
  },
  async claude_bg(params, ctx, config, ops, signal) {
    const data = await ops.bg({ session: str(params.session), channel: streamChannel(ctx, config) }, signal);
    return { text: data.message, details: data };
  },
  async claude_kill(params, ctx, _config, ops, signal) {
    const data = await ops.kill(
      { session: str(params.session), agent: toolAgent(ctx), removeWorktree: bool(params.remove_worktree) },
      signal,
    );
    return { text: data.message, details: data };
  },
  async claude_output(params, _ctx, _config, ops, signal) {
    const data = await ops.output(
      { session: str(params.session), lines: num(params.lines, "lines"), full: bool(params.full) },
      signal,
    );
    return { text: outputText(data), details: data };
  },
  async claude_sessions(params, ctx, _config, ops, signal) {
    const data = await ops.sessions({ status: str(params.status), agent: toolAgent(ctx) }, signal);
    return { text: sessionsText(data), details: data };
  },
  async claude_stats(_params, _ctx, _config, ops, signal) {
    const data = await ops.stats({}, signal);
    return { text: data.display, details: data };
  },
  async claude_recover(params, ctx, _config, ops, signal) {
    const data = await ops.recover(
      { session: str(params.session), dryRun: bool(params.dry_run), agent: toolAgent(ctx) },
      signal,
    );
    return { text: data.message, details: data };
  },
  async claude_worktree(params, _ctx, _config, ops, signal) {
    const data = await ops.worktree({ session: str(params.session) }, signal);
    return { text: data.display, details: data };
  },
};

export function createTool(name, ctx, config, ops) {
  const spec = toolSpecs()[name];
  return {
    name,
    label: spec.label,
    description: spec.description,
    parameters: spec.parameters,
    async execute(_toolCallId, params, signal) {
      // Errors are thrown (OpenClaw reports a tool error) with the CLI's own message.
      const { text, details } = await TOOL_HANDLERS[name](params ?? {}, ctx ?? {}, config, ops, signal);
      return { content: [{ type: "text", text }], details };
    },
  };
}

// ----------------------------------------------------------------------------------------- chat commands

const USAGE = {
  claude: "Usage: /claude [--name <name>] [--worktree [--base <branch>]] <prompt>",
  claude_fg: "Usage: /claude_fg <session>",
  claude_kill: "Usage: /claude_kill [--remove-worktree] <session>",
  claude_worktree: "Usage: /claude_worktree <session>",
  claude_respond: "Usage: /claude_respond [--interrupt] <session> <message>",
  claude_resume: "Usage: /claude_resume <session> [prompt] | --list | --fork <session> [prompt]",
  claude_recover: "Usage: /claude_recover [--dry-run] [session]",
};

const COMMANDS = {
  claude: {
    description: "Launch a Claude Code session: /claude [--name <name>] [--worktree [--base <branch>]] <prompt>",
    acceptsArgs: true,
    async run(args, ctx, config, ops) {
      const { prompt, ...options } = launchArgs(args);
      if (!prompt) return USAGE.claude;
      const data = await ops.launch({ prompt, ...options, channel: commandChannel(ctx) });
      return launchedText(data, "command");
    },
  },
  claude_sessions: {
    description: "List Claude Code sessions",
    acceptsArgs: false,
    async run(_args, _ctx, _config, ops) {
      return sessionsText(await ops.sessions({}));
    },
  },
  claude_fg: {
    description: "Bring a Claude Code session to the foreground: /claude_fg <session>",
    acceptsArgs: true,
    async run(args, ctx, config, ops) {
      const session = args.split(/\s+/)[0];
      if (!session) return USAGE.claude_fg;
      return foregroundText(await ops.fg({ session, channel: commandStreamChannel(ctx, config) }), "command");
    },
  },
  claude_bg: {
    description: "Send a Claude Code session (or all of this chat's) to the background: /claude_bg [session]",
    acceptsArgs: true,
    async run(args, ctx, config, ops) {
      const session = args.split(/\s+/)[0] || undefined;
      return (await ops.bg({ session, channel: commandStreamChannel(ctx, config) })).message;
    },
  },
  claude_kill: {
    description: "Terminate a Claude Code session: /claude_kill [--remove-worktree] <session>",
    acceptsArgs: true,
    async run(args, _ctx, _config, ops) {
      const m = /^(--remove-worktree\s+)?(\S+)/.exec(args);
      if (!m || m[2].startsWith("--")) return USAGE.claude_kill;
      return (await ops.kill({ session: m[2], removeWorktree: Boolean(m[1]) })).message;
    },
  },
  claude_worktree: {
    description: "Show a Claude Code session's git worktree: /claude_worktree <session>",
    acceptsArgs: true,
    async run(args, _ctx, _config, ops) {
      const session = args.split(/\s+/)[0];
      if (!session) return USAGE.claude_worktree;
      return (await ops.worktree({ session })).display;
    },
  },
  claude_respond: {
    description: "Send a message to a Claude Code session: /claude_respond [--interrupt] <session> <message>",
    acceptsArgs: true,
    async run(args, _ctx, _config, ops) {
      const m = /^(--interrupt\s+)?(\S+)\s+([\s\S]+)$/.exec(args);
      if (!m || !m[3].trim()) return USAGE.claude_respond;
      const message = m[3].trim();
      // A person typed it: user-initiated, which resets the session's auto-respond counter.
      const data = await ops.respond({ session: m[2], message, interrupt: Boolean(m[1]), userInitiated: true });
      return respondedText(data, message, "command");
    },
  },
  claude_resume: {
    description:
      "Resume a finished Claude Code session: /claude_resume <session> [prompt] | --list | --fork <session> [prompt]",
    acceptsArgs: true,
    async run(args, ctx, _config, ops) {
      if (args === "--list") return resumableText(await ops.resumable({}));
      const m = /^(--fork\s+)?(\S+)(?:\s+([\s\S]+))?$/.exec(args);
      if (!m || m[2].startsWith("--")) return USAGE.claude_resume;
      const data = await ops.resume({
        session: m[2],
        prompt: m[3]?.trim(),
        fork: Boolean(m[1]),
        channel: commandChannel(ctx),
      });
      return launchedText(data, "command");
    },
  },
  claude_stats: {
    description: "Claude Code usage metrics",
    acceptsArgs: false,
    async run(_args, _ctx, _config, ops) {
      return (await ops.stats({})).display;
    },
  },
  claude_recover: {
    description: "Resume the Claude Code sessions a reboot or crash interrupted: /claude_recover [--dry-run] [session]",
    acceptsArgs: true,
    async run(args, _ctx, _config, ops) {
      const m = /^(--dry-run(?:\s+|$))?(\S+)?$/.exec(args);
      if (!m || m[2]?.startsWith("-")) return USAGE.claude_recover;
      return (await ops.recover({ session: m[2], dryRun: Boolean(m[1]) })).message;
    },
  },
};

/** `/claude` options before the prompt, in any order: `--name <name>`, `--worktree`, `--base <branch>`. */
function launchArgs(args) {
  const out = {};
  let rest = args;
  for (;;) {
    const m = /^--(name|base)\s+(\S+)(?:\s+|$)|^--(worktree)(?:\s+|$)/.exec(rest);
    if (!m) break;
    if (m[3]) out.worktree = true;
    else out[m[1]] = m[2];
    rest = rest.slice(m[0].length);
  }
  return { ...out, prompt: rest.trim() };
}

/** A command's reply; a failure becomes a readable reply too (a command must not crash). */
export async function runCommand(name, ctx, config, ops) {
  const args = typeof ctx?.args === "string" ? ctx.args.trim() : "";
  try {
    return { text: await COMMANDS[name].run(args, ctx ?? {}, config, ops) };
  } catch (e) {
    return { text: `⚠️ ${e instanceof Error ? e.message : String(e)}` };
  }
}

// ----------------------------------------------------------------------------------------- gateway RPC

const session = (p) => str(pick(p, "session", "id", "sessionId", "session_id"));
const agentParam = (p) => str(pick(p, "agentId", "agent_id", "agent"));

/** `claude-code.<name>`: params (camelCase or snake_case) → one operation; answers the CLI's JSON. */
const RPC = {
  launch: {
    scope: "operator.write",
    run: (p, ops) =>
      ops.launch({
        prompt: pick(p, "prompt"),
        name: str(pick(p, "name")),
        workdir: str(pick(p, "workdir")),
        model: str(pick(p, "model")),
        maxBudgetUsd: num(pick(p, "maxBudgetUsd", "max_budget_usd"), "maxBudgetUsd"),
        systemPrompt: str(pick(p, "systemPrompt", "system_prompt")),
        allowedTools: list(pick(p, "allowedTools", "allowed_tools")),
        permissionMode: str(pick(p, "permissionMode", "permission_mode")),
        multiTurnDisabled: bool(pick(p, "multiTurnDisabled", "multi_turn_disabled")),
        channel: explicitChannel(pick(p, "originChannel", "origin_channel", "channel")),
        resume: str(pick(p, "resumeSessionId", "resume_session_id", "resume")),
        fork: bool(pick(p, "forkSession", "fork_session", "fork")),
        agent: agentParam(p),
        memoryMax: str(pick(p, "memoryMax", "memory_max")),
        cpuQuota: str(pick(p, "cpuQuota", "cpu_quota")),
        tasksMax: str(pick(p, "tasksMax", "tasks_max")),
        runtimeMax: str(pick(p, "runtimeMax", "runtime_max")),
        worktree: bool(pick(p, "worktree")),
        base: str(pick(p, "base")),
      }),
  },
  respond: {
    scope: "operator.write",
    run: (p, ops) =>
      ops.respond({
        session: session(p),
        message: pick(p, "message"),
        interrupt: bool(pick(p, "interrupt")),
        userInitiated: bool(pick(p, "userInitiated", "user_initiated")),
        planVersion: num(pick(p, "planVersion", "plan_version"), "planVersion"),
        agent: agentParam(p),
      }),
  },
  fg: {
    scope: "operator.write",
    run: (p, ops) =>
      ops.fg({
        session: session(p),
        channel: explicitChannel(pick(p, "channel", "originChannel", "origin_channel")),
        lines: num(pick(p, "lines"), "lines"),
      }),
  },
  bg: {
    scope: "operator.write",
    run: (p, ops) =>
      ops.bg({ session: session(p), channel: explicitChannel(pick(p, "channel", "originChannel", "origin_channel")) }),
  },
  kill: {
    scope: "operator.write",
    run: (p, ops) =>
      ops.kill({
        session: session(p),
        agent: agentParam(p),
        removeWorktree: bool(pick(p, "removeWorktree", "remove_worktree")),
      }),
  },
  worktree: {
    scope: "operator.read",
    run: (p, ops) => ops.worktree({ session: session(p) }),
  },
  output: {
    scope: "operator.read",
    run: (p, ops) =>
      ops.output({ session: session(p), lines: num(pick(p, "lines"), "lines"), full: bool(pick(p, "full")) }),
  },
  sessions: {
    scope: "operator.read",
    run: (p, ops) =>
      ops.sessions({
        status: str(pick(p, "status")),
        agent: agentParam(p),
        channel: explicitChannel(pick(p, "channel", "originChannel", "origin_channel")),
        all: bool(pick(p, "all", "includeArchived", "include_archived")),
      }),
  },
  stats: {
    scope: "operator.read",
    run: (_p, ops) => ops.stats({}),
  },
  recover: {
    scope: "operator.write",
    run: (p, ops) =>
      ops.recover({
        session: session(p),
        dryRun: bool(pick(p, "dryRun", "dry_run")),
        agent: agentParam(p),
      }),
  },
  resume: {
    scope: "operator.write",
    run: (p, ops) =>
      bool(pick(p, "list"))
        ? ops.resumable({})
        : ops.resume({
            session: str(pick(p, "session", "id", "ref", "resumeSessionId", "resume_session_id")),
            prompt: pick(p, "prompt"),
            fork: bool(pick(p, "fork", "forkSession", "fork_session")),
            name: str(pick(p, "name")),
            channel: explicitChannel(pick(p, "originChannel", "origin_channel", "channel")),
            agent: agentParam(p),
          }),
  },
};

export const RPC_METHODS = Object.keys(RPC).map((name) => `claude-code.${name}`);

export async function runRpc(name, params, respond, ops) {
  try {
    respond(true, await RPC[name].run(params ?? {}, ops));
  } catch (e) {
    const code = e instanceof ClawunitsError ? e.code : "error";
    respond(false, undefined, { code, message: e instanceof Error ? e.message : String(e) });
  }
}

// ------------------------------------------------------------------------------------------ config sync

// Module state shared by every registration: which plugin config was last written to clawunits' TOML.
const lastSync = { key: undefined, promise: undefined, pending: false };

/**
 * Write the plugin config into clawunits' own config file (`clawunits config sync`), so the CLI calls and the
 * notifier unit read the same settings. `force` syncs even when this config was synced before (service start:
 * the file may have changed since); a sync of the same config already under way is shared.
 */
export function syncConfig(config, ops, logger, { force = false } = {}) {
  const key = JSON.stringify(config ?? {});
  if (lastSync.key === key && (lastSync.pending || !force)) return lastSync.promise;
  lastSync.key = key;
  lastSync.pending = true;
  const promise = ops
    .syncConfig(config ?? {})
    .then((res) => {
      logger?.info?.(`clawunits: config synced to ${res?.path ?? "clawunits config"}`);
      return res;
    })
    .catch((e) => {
      // A failed sync is retried on the next registration or service start.
      if (lastSync.promise === promise) lastSync.key = undefined;
      logger?.warn?.(`clawunits: config sync failed: ${e instanceof Error ? e.message : String(e)}`);
      return undefined;
    })
    .finally(() => {
      if (lastSync.promise === promise) lastSync.pending = false;
    });
  lastSync.promise = promise;
  return promise;
}

export function resetSyncState() {
  lastSync.key = undefined;
  lastSync.promise = undefined;
  lastSync.pending = false;
}

// ------------------------------------------------------------------------------------------- the plugin

function register(api) {
  const config = api.pluginConfig && typeof api.pluginConfig === "object" ? api.pluginConfig : {};
  const run = (argv, options = {}) => runClawunits(argv, { ...options, config });
  const ops = operations(run);

  for (const name of TOOL_NAMES) {
    api.registerTool((ctx) => createTool(name, ctx, config, ops), { name });
  }
  for (const [name, spec] of Object.entries(COMMANDS)) {
    api.registerCommand({
      name,
      description: spec.description,
      acceptsArgs: spec.acceptsArgs,
      requireAuth: true,
      handler: (ctx) => runCommand(name, ctx, config, ops),
    });
  }
  for (const [name, spec] of Object.entries(RPC)) {
    api.registerGatewayMethod(`claude-code.${name}`, ({ params, respond }) => runRpc(name, params, respond, ops), {
      scope: spec.scope,
    });
  }
  api.registerService({
    id: "clawunits-config",
    start: async () => {
      await syncConfig(config, ops, api.logger, { force: true });
    },
    stop: () => {},
  });

  // register() also runs for discovery and setup passes (sometimes with an empty config): side effects
  // only in full mode.
  if (api.registrationMode === "full") {
    void syncConfig(config, ops, api.logger);
    const { path } = cliSettings(config);
    api.logger?.debug?.(`clawunits: registered (CLI ${path})`);
  }
}

export default {
  id: PLUGIN_ID,
  name: "clawunits",
  description: "Claude Code sessions as systemd user units, driven from OpenClaw",
  register,
};

// Re-exported for the tests.
export { channelString };
