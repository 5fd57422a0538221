// Caller context → channel strings: the seed's resolution rules, and agentChannels' longest prefix.

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  agentChannelFor,
  channelString,
  commandChannel,
  commandStreamChannel,
  launchChannel,
  streamChannel,
  toolAgent,
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
