// Where a call comes from: the chat channel string and the agent, taken from OpenClaw's tool or command context.
// Only what the CLI cannot know is worked out here; routing and validation stay in clawunits.

// A channel string clawunits accepts: `channel|target` or `channel|account|target` (`|`: OpenClaw splits on `:`).
const CHANNEL_RE = /^[a-z0-9][a-z0-9_.-]{0,31}\|[^\n\0]+$/;
const NO_CHANNEL = new Set(["", "unknown", "gateway", "command"]);

function text(value) {
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  return typeof value === "string" ? value.trim() : "";
}

/** `value` if it is a deliverable channel string, else undefined (bare words like "webchat" are not). */
export function channelString(value) {
  const s = text(value);
  if (NO_CHANNEL.has(s) || !CHANNEL_RE.test(s)) return undefined;
  const parts = s.split("|");
  if (parts.some((p) => !p.trim())) return undefined;
  return s;
}

/** The agentChannels value for `dir`: the longest matching directory prefix wins (as clawunits routes). */
export function agentChannelFor(dir, agentChannels) {
  const path = text(dir).replace(/\/+$/, "") || (text(dir) ? "/" : "");
  if (!path || !agentChannels || typeof agentChannels !== "object") return undefined;
  const keys = Object.keys(agentChannels).sort((a, b) => b.replace(/\/+$/, "").length - a.replace(/\/+$/, "").length);
  for (const prefix of keys) {
    const key = prefix.replace(/\/+$/, "") || "/";
    if (path === key || path.startsWith(key === "/" ? "/" : `${key}/`)) {
      const value = agentChannels[prefix];
      return typeof value === "string" ? value : undefined;
    }
  }
  return undefined;
}

/**
 * The conversation a tool call comes from (seed rules): `ctx.messageChannel` with at least two `|` parts plus
 * `ctx.agentAccountId` gives `channel|account|rest`; else the agentChannels entry of the agent's workspace;
 * else `ctx.messageChannel` itself when it is a channel string.
 */
export function toolChannel(ctx = {}, config = {}) {
  const message = text(ctx.messageChannel);
  const parts = message.split("|");
  const account = text(ctx.agentAccountId);
  if (parts.length === 2 && account) {
    const withAccount = channelString([parts[0], account, parts[1]].join("|"));
    if (withAccount) return withAccount;
  }
  return channelString(agentChannelFor(ctx.workspaceDir, config.agentChannels)) ?? channelString(message);
}

/** The conversation's own channel (its chat), without the agentChannels fallback. */
function ownToolChannel(ctx = {}) {
  const message = text(ctx.messageChannel);
  const parts = message.split("|");
  const account = text(ctx.agentAccountId);
  if (parts.length === 2 && account) return channelString([parts[0], account, parts[1]].join("|"));
  return channelString(message);
}

/**
 * The origin channel claude_launch passes as --channel, or undefined to let clawunits route by agentChannels
 * (the session workdir's longest prefix) and fallbackChannel when notifications go out. The agent workspace's
 * mapping is passed only when the workdir has none of its own: a specific project mapping must win (seed #9).
 */
export function launchChannel(ctx = {}, config = {}, workdir) {
  const own = ownToolChannel(ctx);
  if (own) return own;
  if (workdir && agentChannelFor(workdir, config.agentChannels)) return undefined;
  return channelString(agentChannelFor(ctx.workspaceDir, config.agentChannels));
}

/** The chat a tool streams to (claude_fg / claude_bg): the tool channel, else fallbackChannel. */
export function streamChannel(ctx = {}, config = {}) {
  return toolChannel(ctx, config) ?? channelString(config.fallbackChannel);
}

/**
 * The conversation a chat command comes from: the chat OpenClaw addresses its reply to (`ctx.to`,
 * `telegram:<chat>`: a group's id in a group, the sender's in a direct message), then the seed's order:
 * `channel|chatId`, `channel|senderId`, a numeric `id` as a Telegram chat, a `channelId` that is already a
 * channel string. With `ctx.accountId` the channel account is kept (`telegram|main-bot|-100…`), so the
 * notifier answers through the bot that was asked. No fallbackChannel here: as an origin it would beat the
 * agentChannels routing clawunits does; streams use it (`commandStreamChannel`).
 */
/** A Telegram forum topic's group chat as the channel's adapter addresses it: `<chat>:topic:<thread>`. */
function withTopic(channel, chat, thread) {
  if (channel !== "telegram" || !chat.startsWith("-") || !/^\d+$/.test(thread) || chat.includes(":topic:")) return chat;
  return `${chat}:topic:${thread}`;
}

export function commandChannel(ctx = {}) {
  const channel = text(ctx.channel);
  if (channel) {
    const to = text(ctx.to);
    const chat = withTopic(
      channel,
      to.startsWith(`${channel}:`) ? to.slice(channel.length + 1).replace(/^(group|channel|user):/, "") : "",
      text(ctx.messageThreadId),
    );
    const account = text(ctx.accountId);
    for (const target of [chat, ctx.chatId, ctx.senderId]) {
      const t = text(target);
      const found = t && channelString(account ? `${channel}|${account}|${t}` : `${channel}|${t}`);
      if (found) return found;
    }
  }
  if (/^-?\d+$/.test(text(ctx.id))) return `telegram|${text(ctx.id)}`;
  return channelString(ctx.channelId);
}

/** The chat a command streams to (/claude_fg, /claude_bg): the command's channel, else fallbackChannel. */
export function commandStreamChannel(ctx = {}, config = {}) {
  return commandChannel(ctx) ?? channelString(config.fallbackChannel);
}

/** The OpenClaw agent a tool call acts for, if any. */
export function toolAgent(ctx = {}) {
  return text(ctx.agentId) || undefined;
}

// --------------------------------------------------------------------------------------------- callers

/** `channel|account|id`: a chat sender as clawunits names them (the form of its allowedSenders). */
function senderString(channel, account, id) {
  const parts = [text(channel).split(/[|:]/)[0].toLowerCase(), text(account) || "default", text(id)];
  return parts.every((p) => p && !/[|\n\0]/.test(p)) ? parts.join("|") : undefined;
}

/** The gateway's `commands.ownerAllowFrom` entries, for clawunits' owner check where OpenClaw says nothing. */
function ownerEntries(config) {
  const owners = config?.commands?.ownerAllowFrom;
  return Array.isArray(owners) ? owners.map(text).filter(Boolean) : [];
}

/**
 * Who a chat command acts for: its sender, and what OpenClaw says of them. clawunits decides what they may do
 * (docs/safety.md). A command from a gateway client (Control UI, `chat.send`) carries the client's operator
 * scopes: with `operator.write` or `operator.admin` it is the operator's, as a plugin command's requiredScopes
 * would count it in OpenClaw.
 */
export function commandCaller(ctx = {}) {
  const scopes = Array.isArray(ctx.gatewayClientScopes) ? ctx.gatewayClientScopes : [];
  return {
    via: "command",
    sender: senderString(ctx.channel, ctx.accountId, ctx.senderId),
    owner: ctx.senderIsOwner === true || scopes.includes("operator.admin") || scopes.includes("operator.write"),
    owners: ownerEntries(ctx.config),
    ...agentSession(ctx),
  };
}

/** The OpenClaw agent session a call comes from: the one a session it launches may wake. */
function agentSession(ctx) {
  const session = { agentId: text(ctx.agentId), sessionKey: text(ctx.sessionKey) };
  return Object.fromEntries(Object.entries(session).filter(([, v]) => v));
}

/** Who an agent's tool call acts for: the requester of the agent run (none for cron or heartbeat runs). */
export function toolCaller(ctx = {}) {
  const channel = ctx.deliveryContext?.channel ?? ctx.messageChannel;
  return {
    via: "tool",
    sender: senderString(channel, ctx.agentAccountId, ctx.requesterSenderId),
    owner: ctx.senderIsOwner === true,
    owners: ownerEntries(ctx.config),
    ...agentSession(ctx),
  };
}

/** The CLI's root options that say who calls (before the subcommand). */
export function callerArgs(who) {
  if (!who) return ["--via", "rpc"];
  const args = ["--via", who.via];
  if (who.sender) args.push("--sender", who.sender);
  if (who.owner) args.push("--sender-is-owner");
  for (const entry of who.owners ?? []) args.push("--gateway-owner", entry);
  if (who.agentId) args.push("--agent-id", who.agentId);
  if (who.sessionKey) args.push("--session-key", who.sessionKey);
  return args;
}
