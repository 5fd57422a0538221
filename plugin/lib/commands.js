// The chat commands (/claude, /claude_fg, ...): their arguments parsed into an operation's values, the CLI's
// display text as the reply. `call(operation, values)` is one clawunits call (index.js).

import { commandChannel, commandStreamChannel } from "./context.js";

const USAGE = {
  claude: "Usage: /claude [--name <name>] [--worktree [--base <branch>]] [--notify all|status|quiet] [--priority] <prompt>",
  claude_fg: "Usage: /claude_fg <session>",
  claude_kill: "Usage: /claude_kill [--remove-worktree] <session>",
  claude_notify: "Usage: /claude_notify <session> all|status|quiet|default",
  claude_worktree: "Usage: /claude_worktree <session>",
  claude_merge: "Usage: /claude_merge [--squash] [--into <branch>] [--resolve] <session>",
  claude_pr: "Usage: /claude_pr [--draft] [--base <branch>] <session>",
  claude_respond: "Usage: /claude_respond [--interrupt] <session> <message>",
  claude_resume: "Usage: /claude_resume <session> [prompt] | --list | --fork <session> [prompt]",
  claude_recover: "Usage: /claude_recover [--dry-run] [session]",
};

const firstWord = (args) => args.split(/\s+/)[0] || undefined;

/**
 * `/claude` options before the prompt, in any order: `--name <name>`, `--worktree`, `--base <branch>`,
 * `--notify <policy>`, `--priority`.
 */
function launchArgs(args) {
  const out = {};
  let rest = args;
  for (;;) {
    const m = /^--(name|base|notify)\s+(\S+)(?:\s+|$)|^--(worktree|priority)(?:\s+|$)/.exec(rest);
    if (!m) break;
    if (m[3]) out[m[3]] = true;
    else out[m[1]] = m[2];
    rest = rest.slice(m[0].length);
  }
  return { ...out, prompt: rest.trim() };
}

/** Leading `--flag` and `--option <value>` words, then one session word: { session, ...options } or null. */
function sessionWithOptions(args, flags, options) {
  const out = {};
  const words = args.split(/\s+/).filter(Boolean);
  while (words[0]?.startsWith("--")) {
    const name = words.shift().slice(2);
    if (flags.includes(name)) out[name] = true;
    else if (options.includes(name) && words.length > 1 && !words[0].startsWith("--")) out[name] = words.shift();
    else return null;
  }
  if (words.length !== 1) return null;
  return { ...out, session: words[0] };
}

/**
 * name → { description, acceptsArgs, parse(args, ctx, config) }: `parse` gives [operation, values] for one
 * CLI call, or a usage text to answer without calling it.
 */
export const COMMANDS = {
  claude: {
    description:
      "Launch a Claude Code session: /claude [--name <name>] [--worktree [--base <branch>]] [--notify <policy>] [--priority] <prompt>",
    acceptsArgs: true,
    parse(args, ctx) {
      const { prompt, ...options } = launchArgs(args);
      if (!prompt) return USAGE.claude;
      return ["launch", { prompt, ...options, channel: commandChannel(ctx) }];
    },
  },
  claude_sessions: {
    description: "List Claude Code sessions",
    acceptsArgs: false,
    parse: () => ["sessions", {}],
  },
  claude_fg: {
    description: "Bring a Claude Code session to the foreground: /claude_fg <session>",
    acceptsArgs: true,
    parse(args, ctx, config) {
      const session = firstWord(args);
      return session ? ["fg", { session, channel: commandStreamChannel(ctx, config) }] : USAGE.claude_fg;
    },
  },
  claude_bg: {
    description: "Send a Claude Code session (or all of this chat's) to the background: /claude_bg [session]",
    acceptsArgs: true,
    parse: (args, ctx, config) => ["bg", { session: firstWord(args), channel: commandStreamChannel(ctx, config) }],
  },
  claude_kill: {
    description: "Terminate a Claude Code session: /claude_kill [--remove-worktree] <session>",
    acceptsArgs: true,
    parse(args) {
      const m = /^(--remove-worktree\s+)?(\S+)/.exec(args);
      if (!m || m[2].startsWith("--")) return USAGE.claude_kill;
      return ["kill", { session: m[2], removeWorktree: Boolean(m[1]) }];
    },
  },
  claude_notify: {
    description: "Set what a Claude Code session tells this chat: /claude_notify <session> all|status|quiet|default",
    acceptsArgs: true,
    parse(args) {
      const m = /^(\S+)\s+(all|status|quiet|default)\s*$/.exec(args);
      return m ? ["notify", { session: m[1], policy: m[2] }] : USAGE.claude_notify;
    },
  },
  claude_worktree: {
    description: "Show a Claude Code session's git worktree: /claude_worktree <session>",
    acceptsArgs: true,
    parse(args) {
      const session = firstWord(args);
      return session ? ["worktree", { session }] : USAGE.claude_worktree;
    },
  },
  claude_merge: {
    description:
      "Merge a finished worktree session's branch into its base: /claude_merge [--squash] [--into <branch>] " +
      "[--resolve] <session>",
    acceptsArgs: true,
    parse(args, ctx) {
      const values = sessionWithOptions(args, ["squash", "resolve"], ["into"]);
      return values ? ["merge", { ...values, channel: commandChannel(ctx) }] : USAGE.claude_merge;
    },
  },
  claude_pr: {
    description: "Push a worktree session's branch and open a pull request: /claude_pr [--draft] [--base <branch>] <session>",
    acceptsArgs: true,
    parse(args) {
      const values = sessionWithOptions(args, ["draft"], ["base"]);
      return values ? ["pr", values] : USAGE.claude_pr;
    },
  },
  claude_respond: {
    description: "Send a message to a Claude Code session: /claude_respond [--interrupt] <session> <message>",
    acceptsArgs: true,
    parse(args) {
      const m = /^(--interrupt\s+)?(\S+)\s+([\s\S]+)$/.exec(args);
      if (!m || !m[3].trim()) return USAGE.claude_respond;
      // A person typed it: user-initiated, which resets the session's auto-respond counter.
      return ["respond", { session: m[2], message: m[3].trim(), interrupt: Boolean(m[1]), userInitiated: true }];
    },
  },
  claude_resume: {
    description:
      "Resume a finished Claude Code session: /claude_resume <session> [prompt] | --list | --fork <session> [prompt]",
    acceptsArgs: true,
    parse(args, ctx) {
      if (args === "--list") return ["resumable", {}];
      const m = /^(--fork\s+)?(\S+)(?:\s+([\s\S]+))?$/.exec(args);
      if (!m || m[2].startsWith("--")) return USAGE.claude_resume;
      return ["resume", { session: m[2], prompt: m[3]?.trim(), fork: Boolean(m[1]), channel: commandChannel(ctx) }];
    },
  },
  claude_stats: {
    description: "Claude Code usage metrics",
    acceptsArgs: false,
    parse: () => ["stats", {}],
  },
  claude_recover: {
    description: "Resume the Claude Code sessions a reboot or crash interrupted: /claude_recover [--dry-run] [session]",
    acceptsArgs: true,
    parse(args) {
      const m = /^(--dry-run(?:\s+|$))?(\S+)?$/.exec(args);
      if (!m || m[2]?.startsWith("-")) return USAGE.claude_recover;
      return ["recover", { session: m[2], dryRun: Boolean(m[1]) }];
    },
  },
};
