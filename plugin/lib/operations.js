// The clawunits operations the plugin offers, one parameter table each. The agent tools' schemas, the gateway
// RPC parameters and the CLI argv are all generated from these tables (lib/params.js explains a parameter),
// so a parameter is added, renamed or documented here and nowhere else.

import fs from "node:fs";

import { launchChannel, streamChannel, toolAgent } from "./context.js";
import { bool, invalid, str } from "./params.js";

// The permission modes are stated once, in the manifest's config schema (as the CLI's --permission-mode
// choices; tests/test_plugin_shim.py checks that the two agree).
const MANIFEST = JSON.parse(fs.readFileSync(new URL("../openclaw.plugin.json", import.meta.url), "utf8"));
export const PERMISSION_MODES = MANIFEST.configSchema.properties.permissionMode.enum;
// `clawunits sessions --status` (tests/test_plugin_shim.py checks them against the CLI too).
export const STATUSES = ["all", "running", "waiting", "completed", "failed", "killed", "interrupted", "queued", "limited"];
export const DEFAULT_RESUME_PROMPT = "Continue where you left off.";
// What a session tells its chat (the manifest's notifyPolicy enum, as the CLI's --notify choices).
export const NOTIFY_POLICIES = MANIFEST.configSchema.properties.notifyPolicy.enum;

// ---------------------------------------------------------------------------------- shared parameters

const SESSION_NAMES = ["session", "id", "sessionId", "session_id"];
const SESSION = {
  key: "session",
  kind: "string",
  positional: true,
  required: true,
  tool: "session",
  rpc: SESSION_NAMES,
  description: "Session name or ID",
};
const AGENT = { key: "agent", kind: "string", flag: "agent", rpc: ["agentId", "agent_id", "agent"] };
const CHANNEL_NAMES = ["channel", "originChannel", "origin_channel"];
const CHANNEL = { key: "channel", kind: "channel", flag: "channel", rpc: CHANNEL_NAMES };
const ORIGIN_CHANNEL = { ...CHANNEL, rpc: ["originChannel", "origin_channel", "channel"] };
const NAME = { key: "name", kind: "string", flag: "name", rpc: ["name"] };
const FORK = { key: "fork", kind: "flag", flag: "fork" };

// A tool acting for an OpenClaw agent: clawunits lets it see and steer only that agent's sessions.
// Beyond maxSessions a launch waits in the launch queue; this puts it at the front.
const PRIORITY = {
  key: "priority",
  kind: "flag",
  flag: "priority",
  tool: "priority",
  rpc: ["priority"],
  description: "If maxSessions are running: queue it at the front of the launch queue (it starts next)",
};
const asAgent = (values, ctx) => ({ ...values, agent: toolAgent(ctx) });

// ------------------------------------------------------------------------------------- the operations

/**
 * name → { command (CLI words before --json), surfaced (the CLI's text names a next step: --surface tool|chat),
 *          params (the table), check(values) (before the call),
 *          tool: { name, label, description, context(values, ctx, config) (what OpenClaw's context adds) },
 *          rpc: { scope, route(params) (another operation answers some requests) } }
 * Tools are registered in this order (the manifest lists them so).
 */
export const OPERATIONS = {
  launch: {
    surfaced: true,
    command: ["launch"],
    params: [
      {
        key: "prompt",
        kind: "text",
        required: true,
        tool: "prompt",
        rpc: ["prompt"],
        description: "The task prompt to execute",
      },
      {
        ...NAME,
        tool: "name",
        description: "Short kebab-case name (e.g. fix-auth); generated from the prompt if omitted",
      },
      {
        key: "workdir",
        kind: "string",
        flag: "workdir",
        tool: "workdir",
        rpc: ["workdir"],
        description: "Working directory (absolute); defaults to the agent workspace",
      },
      {
        key: "model",
        kind: "string",
        flag: "model",
        tool: "model",
        rpc: ["model"],
        description: "Model name (e.g. sonnet, opus); defaults to the configured defaultModel",
      },
      {
        key: "maxBudgetUsd",
        kind: "number",
        flag: "max-budget-usd",
        tool: "max_budget_usd",
        rpc: ["maxBudgetUsd", "max_budget_usd"],
        description: "Maximum budget in USD (default: defaultBudgetUsd, 5)",
        schema: { exclusiveMinimum: 0 },
      },
      {
        key: "systemPrompt",
        kind: "string",
        flag: "system-prompt",
        tool: "system_prompt",
        rpc: ["systemPrompt", "system_prompt"],
        description: "Additional system prompt appended to Claude Code's own",
      },
      {
        key: "allowedTools",
        kind: "list",
        flag: "allowed-tools",
        tool: "allowed_tools",
        rpc: ["allowedTools", "allowed_tools"],
        description: "Tools allowed without asking",
      },
      {
        key: "resume",
        kind: "string",
        flag: "resume",
        tool: "resume_session_id",
        rpc: ["resumeSessionId", "resume_session_id", "resume"],
        description: "Resume a previous session: name, ID or Claude session UUID",
      },
      {
        ...FORK,
        tool: "fork_session",
        rpc: ["forkSession", "fork_session", "fork"],
        description: "With resume_session_id: fork into a new conversation instead of continuing it",
      },
      {
        key: "multiTurnDisabled",
        kind: "flag",
        flag: "multi-turn-disabled",
        tool: "multi_turn_disabled",
        rpc: ["multiTurnDisabled", "multi_turn_disabled"],
        description: "Fire-and-forget: the session ends after its first turn (default false)",
      },
      {
        key: "permissionMode",
        kind: "string",
        flag: "permission-mode",
        tool: "permission_mode",
        rpc: ["permissionMode", "permission_mode"],
        description: "Permission mode (default: the configured permissionMode)",
        schema: { enum: PERMISSION_MODES },
      },
      {
        key: "notify",
        kind: "string",
        flag: "notify",
        tool: "notify",
        rpc: ["notify", "notifyPolicy", "notify_policy"],
        description:
          "What the chat is told: all (every notification), status (one status message edited in place, plus " +
          "questions, plans and the end) or quiet (only questions, plans and the end); default: notifyPolicy",
        schema: { enum: NOTIFY_POLICIES },
      },
      ORIGIN_CHANNEL,
      AGENT,
      // The pre-launch guards run for agent tools only, in the agent's workspace.
      { key: "guards", kind: "flag", flag: "guards" },
      { key: "agentWorkspace", kind: "string", flag: "agent-workspace", when: (v) => v.guards },
      {
        key: "memoryMax",
        kind: "string",
        flag: "memory-max",
        tool: "memory_max",
        rpc: ["memoryMax", "memory_max"],
        description: "Memory limit, e.g. 2G (default: the configured memoryMax, 4G)",
      },
      {
        key: "cpuQuota",
        kind: "string",
        flag: "cpu-quota",
        tool: "cpu_quota",
        rpc: ["cpuQuota", "cpu_quota"],
        description: "CPU limit, e.g. 150% (default: the configured cpuQuota, 200%)",
      },
      {
        key: "tasksMax",
        kind: "string",
        flag: "tasks-max",
        tool: "tasks_max",
        rpc: ["tasksMax", "tasks_max"],
        description: "Process/thread limit (default: the configured tasksMax, 1024)",
      },
      {
        key: "runtimeMax",
        kind: "string",
        flag: "runtime-max",
        tool: "runtime_max",
        rpc: ["runtimeMax", "runtime_max"],
        description: "Stop the session after this long, e.g. 2h (default: the configured runtimeMax, 24h)",
      },
      {
        key: "worktree",
        kind: "flag",
        flag: "worktree",
        tool: "worktree",
        rpc: ["worktree"],
        description: "Work in a new git worktree on branch clawunits/<name>, leaving the checkout untouched",
      },
      {
        key: "base",
        kind: "string",
        flag: "base",
        tool: "base",
        rpc: ["base"],
        description: "With worktree: the branch to start from (default: the workdir's current branch)",
      },
      PRIORITY,
    ],
    tool: {
      name: "claude_launch",
      label: "Launch Claude Code",
      description:
        "Launch a Claude Code session in the background (its own systemd unit) to work on a development task. " +
        "Sessions are multi-turn by default: send follow-ups with claude_respond. Runs pre-launch safety checks.",
      context(values, ctx, config) {
        // Resuming: leave the workdir to clawunits (the resumed session's), where Claude finds the conversation.
        const workspace = str(ctx.workspaceDir);
        const workdir = values.workdir ?? (values.resume ? undefined : workspace);
        return {
          ...asAgent(values, ctx),
          workdir,
          channel: launchChannel(ctx, config, workdir),
          guards: true,
          agentWorkspace: workspace,
        };
      },
    },
    rpc: { scope: "operator.write" },
  },

  respond: {
    surfaced: true,
    command: ["respond"],
    params: [
      SESSION,
      {
        key: "message",
        kind: "text",
        required: true,
        tool: "message",
        rpc: ["message"],
        description: "The message to send",
      },
      {
        key: "interrupt",
        kind: "flag",
        flag: "interrupt",
        tool: "interrupt",
        rpc: ["interrupt"],
        description: "Interrupt the current turn before sending, to redirect the session",
      },
      {
        key: "userInitiated",
        kind: "flag",
        flag: "user-initiated",
        tool: ["userInitiated", "user_initiated"],
        rpc: ["userInitiated", "user_initiated"],
        description: "True when the message comes from the user; resets the auto-respond counter",
      },
      {
        key: "planVersion",
        kind: "number",
        flag: "plan-version",
        tool: ["planVersion", "plan_version"],
        rpc: ["planVersion", "plan_version"],
        description: "The plan version this answer is for (📋 Plan ready … plan vN); a stale one is refused",
        schema: { minimum: 1 },
      },
      AGENT,
    ],
    tool: {
      name: "claude_respond",
      label: "Respond to Claude Code",
      description:
        "Send a follow-up message to a running multi-turn Claude Code session (also answers its questions and " +
        "permission requests). Set userInitiated when relaying the user's own words. A session waiting for plan " +
        "approval takes 'approve' (or 'approve default') or 'reject <what to change>'; pass its planVersion.",
      context: asAgent,
    },
    rpc: { scope: "operator.write" },
  },

  fg: {
    surfaced: true,
    command: ["fg"],
    params: [
      SESSION,
      CHANNEL,
      {
        key: "lines",
        kind: "number",
        flag: "lines",
        tool: "lines",
        rpc: ["lines"],
        description: "Recent entries shown when there is no catch-up (default 30)",
      },
    ],
    tool: {
      name: "claude_fg",
      label: "Foreground Claude Code session",
      description:
        "Bring a Claude Code session to the foreground: show what this conversation missed, then stream its new " +
        "output here.",
      context: (values, ctx, config) => ({ ...values, channel: streamChannel(ctx, config) }),
    },
    rpc: { scope: "operator.write" },
  },

  bg: {
    command: ["bg"],
    params: [
      {
        ...SESSION,
        required: false,
        description: "Session name or ID; omit to detach every foreground session",
      },
      CHANNEL,
    ],
    check(values) {
      if (!values.channel) {
        throw invalid(
          "No chat channel is known for this conversation, so there is no foreground to leave " +
            "(map the agent's workspace in agentChannels or set fallbackChannel).",
        );
      }
    },
    tool: {
      name: "claude_bg",
      label: "Background Claude Code session",
      description:
        "Stop streaming a Claude Code session here (or, without session, every session in the foreground of this " +
        "conversation).",
      context: (values, ctx, config) => ({ ...values, channel: streamChannel(ctx, config) }),
    },
    rpc: { scope: "operator.write" },
  },

  kill: {
    command: ["kill"],
    params: [
      SESSION,
      {
        key: "removeWorktree",
        kind: "flag",
        flag: "remove-worktree",
        tool: "remove_worktree",
        rpc: ["removeWorktree", "remove_worktree"],
        description: "Then remove its worktree and branch if merged into the base and clean (else kept)",
      },
      AGENT,
    ],
    tool: {
      name: "claude_kill",
      label: "Kill Claude Code session",
      description: "Terminate a Claude Code session and every process it started.",
      context: asAgent,
    },
    rpc: { scope: "operator.write" },
  },

  notify: {
    command: ["notify"],
    params: [
      SESSION,
      {
        key: "policy",
        kind: "string",
        positional: true,
        required: true,
        tool: "policy",
        rpc: ["policy", "notify", "notifyPolicy"],
        description:
          "all (every notification), status (one status message edited in place, plus questions, plans and the " +
          "end), quiet (only questions, plans and the end), or default (the configured notifyPolicy)",
        schema: { enum: [...NOTIFY_POLICIES, "default"] },
      },
      AGENT,
    ],
    tool: {
      name: "claude_notify",
      label: "Set what a Claude Code session tells its chat",
      description:
        "Change what a Claude Code session tells its chat from now on: all, status (one live status message " +
        "edited in place), quiet, or default.",
      context: asAgent,
    },
    rpc: { scope: "operator.write" },
  },

  output: {
    command: ["output"],
    params: [
      SESSION,
      {
        key: "lines",
        kind: "number",
        flag: "lines",
        tool: "lines",
        rpc: ["lines"],
        description: "How many recent entries to show (default 50)",
        when: (v) => !v.full,
      },
      {
        key: "full",
        kind: "flag",
        flag: "full",
        tool: "full",
        rpc: ["full"],
        description: "Show all output of the session",
      },
    ],
    tool: {
      name: "claude_output",
      label: "Claude Code output",
      description: "Show recent output of a Claude Code session (read-only).",
    },
    rpc: { scope: "operator.read" },
  },

  sessions: {
    command: ["sessions"],
    params: [
      {
        key: "status",
        kind: "string",
        flag: "status",
        tool: "status",
        rpc: ["status"],
        description: "Filter by status (default all; running = not finished)",
        schema: { enum: STATUSES },
      },
      AGENT,
      CHANNEL,
      { key: "all", kind: "flag", flag: "all", rpc: ["all", "includeArchived", "include_archived"] },
    ],
    tool: {
      name: "claude_sessions",
      label: "Claude Code sessions",
      description: "List Claude Code sessions with their status (an agent sees the sessions it launched).",
      context: asAgent,
    },
    rpc: { scope: "operator.read" },
  },

  stats: {
    command: ["stats"],
    params: [],
    tool: {
      name: "claude_stats",
      label: "Claude Code stats",
      description: "Usage metrics: sessions by status, total cost, average duration, most expensive session.",
    },
    rpc: { scope: "operator.read" },
  },

  // Sessions a shutdown interrupted run again as themselves; with `session`, only that one.
  recover: {
    command: ["recover"],
    params: [
      {
        ...SESSION,
        required: false,
        description: "Only this session (name or ID); omit for every interrupted session",
      },
      {
        key: "dryRun",
        kind: "flag",
        flag: "dry-run",
        tool: "dry_run",
        rpc: ["dryRun", "dry_run"],
        description: "Only say what would be recovered",
      },
      AGENT,
    ],
    tool: {
      name: "claude_recover",
      label: "Recover Claude Code sessions",
      description:
        "Resume the Claude Code sessions a reboot or crash interrupted (status interrupted), each as the same " +
        "session with its conversation, workdir, model and remaining budget. Killed and finished sessions are " +
        "left alone. Normally this runs by itself when the machine starts.",
      context: asAgent,
    },
    rpc: { scope: "operator.write" },
  },

  worktree: {
    command: ["worktree"],
    params: [SESSION],
    tool: {
      name: "claude_worktree",
      label: "Claude Code worktree",
      description:
        "Show the git worktree of a session launched with worktree: its branch and base, whether it is merged, " +
        "its commits, uncommitted changes and diff stat against the base (read-only).",
    },
    rpc: { scope: "operator.read" },
  },

  // A finished worktree session's branch into its base; a conflict (or a dirty target) changes nothing.
  merge: {
    command: ["merge"],
    params: [
      SESSION,
      {
        key: "squash",
        kind: "flag",
        flag: "squash",
        tool: "squash",
        rpc: ["squash"],
        description: "One commit on the target instead of a merge commit",
      },
      {
        key: "into",
        kind: "string",
        flag: "into",
        tool: "into",
        rpc: ["into"],
        description: "The local branch to merge into (default: the branch the session started from)",
      },
      {
        key: "resolve",
        kind: "flag",
        flag: "resolve",
        tool: "resolve",
        rpc: ["resolve"],
        description: "On a conflict, launch a session that resolves it in the worktree (then merge again)",
      },
      {
        key: "instructions",
        kind: "string",
        flag: "instructions",
        tool: "instructions",
        rpc: ["instructions"],
        description: "With resolve: added to the resolving session's prompt",
        when: (v) => v.resolve,
      },
      CHANNEL,
      AGENT,
    ],
    tool: {
      name: "claude_merge",
      label: "Merge Claude Code session",
      description:
        "Merge a finished worktree session's branch (with any work it left uncommitted) into its base branch, or " +
        "into `into`. On a conflict, or uncommitted changes in the target's checkout, nothing changes and the " +
        "answer says why; with resolve, a conflict launches a session that resolves it. A merged, clean worktree " +
        "is removed afterwards.",
      context: (values, ctx, config) => ({ ...asAgent(values, ctx), channel: launchChannel(ctx, config) }),
    },
    rpc: { scope: "operator.write" },
  },

  pr: {
    command: ["pr"],
    params: [
      SESSION,
      {
        key: "base",
        kind: "string",
        flag: "base",
        tool: "base",
        rpc: ["base"],
        description: "The branch the pull request goes into (default: the branch the session started from)",
      },
      {
        key: "remote",
        kind: "string",
        flag: "remote",
        tool: "remote",
        rpc: ["remote"],
        description: "The git remote to push to (default: origin, or the only one)",
      },
      { key: "draft", kind: "flag", flag: "draft", tool: "draft", rpc: ["draft"], description: "Open it as a draft" },
      AGENT,
    ],
    tool: {
      name: "claude_pr",
      label: "Pull request for Claude Code session",
      description:
        "Push a worktree session's branch and open a GitHub pull request with gh; the title and body come from " +
        "the session's prompt and final summary. Answers the pull request's address.",
      context: asAgent,
    },
    rpc: { scope: "operator.write" },
  },

  // A resume is a launch with --resume (its prompt on stdin); workdir and model default to the session's.
  resume: {
    surfaced: true,
    command: ["launch"],
    params: [
      { key: "prompt", kind: "text", fallback: DEFAULT_RESUME_PROMPT, rpc: ["prompt"] },
      NAME,
      ORIGIN_CHANNEL,
      {
        key: "session",
        kind: "string",
        flag: "resume",
        required: true,
        rpc: ["session", "id", "ref", "resumeSessionId", "resume_session_id"],
      },
      { ...FORK, rpc: ["fork", "forkSession", "fork_session"] },
      AGENT,
      PRIORITY,
    ],
    // `claude-code.resume` with `list` lists the resumable sessions instead.
    rpc: { scope: "operator.write", route: (params) => (bool(params?.list) ? "resumable" : "resume") },
  },

  resumable: { command: ["resume", "--list"], params: [] },
};

/** The agent tools' names, in the order they are registered. */
export const TOOL_NAMES = Object.values(OPERATIONS)
  .map((op) => op.tool?.name)
  .filter(Boolean);
