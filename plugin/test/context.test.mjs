// Caller context → channel strings: the seed's resolution rules, and agentChannels' longest prefix.

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  agentChannelFor,
  callerArgs,
  channelString,
  commandCaller,
  commandChannel,
  commandStreamChannel,
  launchChannel,
  streamChannel,
  toolAgent,
  toolCaller,
  toolChannel,
} from "../lib/context.js";

const agentChannels = {
  "/home/u/agents/seo": "telegram|seo-bot|111",
  "/home/u/agents/seo/project-x": "telegram|seo-bot|222",
  "/home/u/agents/dev/": "discord|333",
};

describe("channelString", () => {
  it("accepts channel|target and channel|account|target only", () => {
    assert.equal(channelString("telegram|123"), "telegram|123");
    assert.equal(channelString(" telegram|bot|-100123 "), "telegram|bot|-100123");
    for (const bad of [
      "",
      "webchat",
      "unknown",
      "gateway",
      "command",
      "telegram|",
      "|123",
      "a||b",
      "Tele gram|1",
      undefined,
      null,
      42,
    ]) {
      assert.equal(channelString(bad), undefined, String(bad));
    }
  });
});

describe("agentChannelFor", () => {
  it("picks the longest matching directory prefix", () => {
    assert.equal(agentChannelFor("/home/u/agents/seo", agentChannels), "telegram|seo-bot|111");
    assert.equal(agentChannelFor("/home/u/agents/seo/", agentChannels), "telegram|seo-bot|111");
    assert.equal(agentChannelFor("/home/u/agents/seo/other", agentChannels), "telegram|seo-bot|111");
    assert.equal(agentChannelFor("/home/u/agents/seo/project-x/src", agentChannels), "telegram|seo-bot|222");
    assert.equal(agentChannelFor("/home/u/agents/dev", agentChannels), "discord|333");
  });

  it("matches whole path components only", () => {
    assert.equal(agentChannelFor("/home/u/agents/seo-2", agentChannels), undefined);
    assert.equal(agentChannelFor("/home/u/agents/devops", agentChannels), undefined);
    assert.equal(agentChannelFor("/elsewhere", agentChannels), undefined);
    assert.equal(agentChannelFor(undefined, agentChannels), undefined);
    assert.equal(agentChannelFor("/x", undefined), undefined);
  });

  it("lets / match everything", () => {
    assert.equal(agentChannelFor("/any/dir", { "/": "telegram|1" }), "telegram|1");
  });
});

describe("tool context", () => {
  const config = { agentChannels, fallbackChannel: "telegram|999" };

  it("adds the agent account to a two-part message channel", () => {
    assert.equal(toolChannel({ messageChannel: "telegram|555", agentAccountId: "bot2" }, config), "telegram|bot2|555");
  });

  it("uses the workspace's agentChannels entry, then a message channel that is a channel string", () => {
    assert.equal(
      toolChannel({ workspaceDir: "/home/u/agents/seo", messageChannel: "webchat" }, config),
      "telegram|seo-bot|111",
    );
    assert.equal(toolChannel({ messageChannel: "telegram|bot|555" }, config), "telegram|bot|555");
    assert.equal(toolChannel({ messageChannel: "webchat", workspaceDir: "/tmp" }, config), undefined);
  });

  it("streams to fallbackChannel when the conversation has no channel", () => {
    assert.equal(streamChannel({ workspaceDir: "/tmp" }, config), "telegram|999");
    assert.equal(streamChannel({ workspaceDir: "/home/u/agents/dev" }, config), "discord|333");
    assert.equal(streamChannel({}, {}), undefined);
  });

  it("leaves a launch's routing to clawunits when the workdir has its own mapping", () => {
    const ctx = { workspaceDir: "/home/u/agents/seo" };
    // The project's own, more specific mapping must win: no origin channel from the workspace.
    assert.equal(launchChannel(ctx, config, "/home/u/agents/seo/project-x"), undefined);
    // A workdir without a mapping: the agent's workspace channel is the origin.
    assert.equal(launchChannel(ctx, config, "/srv/code"), "telegram|seo-bot|111");
    // The conversation's own channel always wins.
    assert.equal(
      launchChannel(
        { ...ctx, messageChannel: "telegram|42", agentAccountId: "b" },
        config,
        "/home/u/agents/seo/project-x",
      ),
      "telegram|b|42",
    );
    assert.equal(launchChannel({}, config, "/srv/code"), undefined);
  });

  it("acts as the calling agent", () => {
    assert.equal(toolAgent({ agentId: "main" }), "main");
    assert.equal(toolAgent({}), undefined);
  });
});

describe("command context (seed order)", () => {
  it("prefers channel|chatId, then channel|senderId", () => {
    assert.equal(commandChannel({ channel: "telegram", chatId: "-100", senderId: "7" }), "telegram|-100");
    assert.equal(commandChannel({ channel: "webchat", senderId: "cli" }), "webchat|cli");
  });

  it("answers in the chat OpenClaw replies to (a group, not the member), through the account that was asked", () => {
    // As OpenClaw 2026.9.6 fills a Telegram command's ctx (tests/telegram_harness.py).
    const group = { channel: "telegram", accountId: "main-bot", senderId: "3003", to: "telegram:-1001234567890" };
    assert.equal(commandChannel(group), "telegram|main-bot|-1001234567890");
    const dm = { channel: "telegram", accountId: "main-bot", senderId: "1001", to: "telegram:1001" };
    assert.equal(commandChannel(dm), "telegram|main-bot|1001");
    assert.equal(commandChannel({ ...group, to: "telegram:group:-1001234567890" }), "telegram|main-bot|-1001234567890");
    // A forum topic: notifications go to the topic, as the Telegram adapter addresses it.
    assert.equal(commandChannel({ ...group, messageThreadId: 42 }), "telegram|main-bot|-1001234567890:topic:42");
    assert.equal(commandChannel({ ...dm, messageThreadId: 42 }), "telegram|main-bot|1001");
    // A `to` of another kind (webchat's is a session key) is not a chat.
    assert.equal(commandChannel({ channel: "webchat", senderId: "cli", to: "agent:main:main" }), "webchat|cli");
  });

  it("reads a numeric id as a Telegram chat, then a channelId that is a channel string", () => {
    assert.equal(commandChannel({ id: 12345 }), "telegram|12345");
    assert.equal(commandChannel({ channelId: "discord|chan" }), "discord|chan");
    assert.equal(commandChannel({ channel: "webchat", channelId: "webchat" }), undefined);
  });

  it("never makes fallbackChannel an origin, but streams to it", () => {
    const config = { fallbackChannel: "telegram|999" };
    assert.equal(commandChannel({ channel: "webchat" }, config), undefined);
    assert.equal(commandStreamChannel({ channel: "webchat" }, config), "telegram|999");
    assert.equal(commandStreamChannel({ channel: "webchat", senderId: "cli" }, config), "webchat|cli");
  });
});

describe("callers (who a call acts for; clawunits applies the rule)", () => {
  const config = { commands: { ownerAllowFrom: ["telegram:111", " 222 "] } };

  it("a command's sender is channel|account|id, with OpenClaw's word and the gateway's owner list", () => {
    const ctx = { channel: "telegram", accountId: "main-bot", senderId: "555", config, senderIsOwner: true };
    const who = commandCaller(ctx);
    assert.deepEqual(who, { via: "command", sender: "telegram|main-bot|555", owner: true, owners: ["telegram:111", "222"] });
    assert.deepEqual(callerArgs(who), [
      "--via", "command", "--sender", "telegram|main-bot|555", "--sender-is-owner",
      "--gateway-owner", "telegram:111", "--gateway-owner", "222",
    ]);
  });

  it("no account is the channel's default account; no owner word is no owner", () => {
    const who = commandCaller({ channel: "telegram", senderId: 7 });
    assert.deepEqual(callerArgs(who), ["--via", "command", "--sender", "telegram|default|7"]);
  });

  it("a gateway client's command is the operator's only with write or admin scope", () => {
    const base = { channel: "webchat", senderId: "cli" };
    assert.equal(commandCaller({ ...base, gatewayClientScopes: ["operator.write"] }).owner, true);
    assert.equal(commandCaller({ ...base, gatewayClientScopes: ["operator.admin"] }).owner, true);
    assert.equal(commandCaller({ ...base, gatewayClientScopes: ["operator.read"] }).owner, false);
    assert.equal(commandCaller(base).owner, false);
  });

  it("a sender id that would break the form is no sender", () => {
    assert.equal(commandCaller({ channel: "telegram", senderId: "1|2" }).sender, undefined);
    assert.equal(commandCaller({ channel: "telegram" }).sender, undefined);
  });

  it("a tool acts for the agent run's requester, or for nobody (cron, heartbeat)", () => {
    const ctx = { messageChannel: "telegram", agentAccountId: "main-bot", requesterSenderId: "555", config };
    assert.deepEqual(toolCaller(ctx), { via: "tool", sender: "telegram|main-bot|555", owner: false, owners: ["telegram:111", "222"] });
    assert.equal(toolCaller({ ...ctx, senderIsOwner: true }).owner, true);
    assert.deepEqual(callerArgs(toolCaller({})), ["--via", "tool"]);
    assert.deepEqual(callerArgs(undefined), ["--via", "rpc"]);
  });

  it("a tool's and a command's agent session go along: the one a session they launch wakes", () => {
    const tool = toolCaller({ agentId: "ops", sessionKey: "agent:ops:telegram:group:-100123" });
    assert.deepEqual(callerArgs(tool), ["--via", "tool", "--agent-id", "ops", "--session-key", "agent:ops:telegram:group:-100123"]);
    const command = commandCaller({ channel: "telegram", senderId: "7", sessionKey: "agent:main:main", agentId: "main" });
    assert.deepEqual(callerArgs(command).slice(-4), ["--agent-id", "main", "--session-key", "agent:main:main"]);
  });
});
