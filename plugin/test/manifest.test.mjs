// The manifest and package.json: what OpenClaw reads before running any plugin code.

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

import plugin, { TOOL_NAMES } from "../index.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const pluginDir = path.resolve(here, "..");
const repo = path.resolve(pluginDir, "..");
const manifest = JSON.parse(fs.readFileSync(path.join(pluginDir, "openclaw.plugin.json"), "utf8"));
const pkg = JSON.parse(fs.readFileSync(path.join(pluginDir, "package.json"), "utf8"));

/** The options of clawunits' Settings dataclass (clawunits/state/config.py): name → default literal. */
function settingsOfConfigPy() {
  const text = fs.readFileSync(path.join(repo, "clawunits", "state", "config.py"), "utf8");
  const body = text.split("class Settings:")[1].split("\n\n\n")[0];
  const out = {};
  for (const m of body.matchAll(/^ {4}(\w+): [^=\n]+= (.+)$/gm)) {
    const raw = m[2].trim();
    let value;
    if (/^-?\d+(\.\d+)?$/.test(raw)) value = Number(raw);
    else if (raw === "True" || raw === "False") value = raw === "True";
    else if (raw === "None" || raw.startsWith("field(")) value = undefined;
    else if (/^".*"$/.test(raw)) value = JSON.parse(raw);
    else value = raw;
    out[m[1]] = value;
  }
  return out;
}

describe("openclaw.plugin.json", () => {
  it("has the plugin's identity and starts with the gateway", () => {
    assert.equal(manifest.id, "clawunits");
    assert.equal(manifest.id, plugin.id);
    assert.ok(manifest.name && manifest.description && manifest.version);
    assert.equal(manifest.version, pkg.version);
    assert.deepEqual(manifest.activation, { onStartup: true });
  });

  it("declares every registered tool", () => {
    assert.deepEqual(manifest.contracts.tools, TOOL_NAMES);
  });

  it("ships the skills directory", () => {
    assert.deepEqual(manifest.skills, ["./skills"]);
    const skill = fs.readFileSync(path.join(repo, "skills", "claude-code-orchestration", "SKILL.md"), "utf8");
    const front = /^---\n([\s\S]*?)\n---\n/.exec(skill);
    assert.ok(front, "SKILL.md starts with frontmatter");
    assert.match(front[1], /^name: claude-code-orchestration$/m);
    assert.match(front[1], /^description: .{40,}$/m);
    const metadata = /^metadata: (.*)$/m.exec(front[1]);
    assert.deepEqual(JSON.parse(metadata[1]).openclaw.requires.bins, ["clawunits"]);
  });

  it("has a strict config schema with every clawunits option and the plugin's own", () => {
    const schema = manifest.configSchema;
    assert.equal(schema.type, "object");
    assert.equal(schema.additionalProperties, false);
    const settings = settingsOfConfigPy();
    const seed = [
      "maxSessions",
      "defaultBudgetUsd",
      "defaultModel",
      "defaultWorkdir",
      "idleTimeoutMinutes",
      "maxPersistedSessions",
      "fallbackChannel",
      "agentChannels",
      "permissionMode",
      "maxAutoResponds",
      "skipSafetyChecks",
    ];
    for (const key of seed) assert.ok(key in settings, `${key} is a clawunits option`);
    const expected = [...Object.keys(settings), "clawunitsPath", "timeoutMs", "maxOutputBytes"].sort();
    assert.deepEqual(Object.keys(schema.properties).sort(), expected);
    for (const [key, prop] of Object.entries(schema.properties)) {
      assert.ok(prop.description, `${key} has a description`);
      assert.ok(prop.type, `${key} has a type`);
      // OpenClaw hands a schema default to the plugin as if the user had set it, and the sync would then
      // overwrite what the user wrote in config.toml: clawunits' own defaults apply instead.
      if (key in settings) assert.equal(prop.default, undefined, `${key}: no schema default`);
    }
    assert.deepEqual(schema.properties.permissionMode.enum.sort(), [
      "acceptEdits",
      "bypassPermissions",
      "default",
      "plan",
    ]);
    assert.deepEqual(schema.properties.agentChannels.additionalProperties, { type: "string" });
    assert.deepEqual(schema.properties.env.additionalProperties, { type: "string" });
    assert.deepEqual(schema.properties.passEnv.items, { type: "string" });
    assert.equal(schema.properties.maxSessions.type, "integer");
    assert.equal(schema.properties.skipSafetyChecks.type, "boolean");
  });

  it("has UI hints only for known options", () => {
    for (const key of Object.keys(manifest.uiHints)) assert.ok(key in manifest.configSchema.properties, key);
    assert.equal(manifest.uiHints.env.sensitive, true);
  });
});

describe("package.json", () => {
  it("is a dependency-free ESM package whose entry is index.js", () => {
    assert.equal(pkg.name, "@clawunits/openclaw-plugin");
    assert.equal(pkg.type, "module");
    assert.deepEqual(pkg.openclaw.extensions, ["./index.js"]);
    assert.equal(pkg.dependencies, undefined);
    assert.equal(typeof plugin.register, "function");
  });

  it("imports nothing but node: built-ins and its own files", () => {
    for (const file of ["index.js", ...fs.readdirSync(path.join(pluginDir, "lib")).map((f) => `lib/${f}`)]) {
      const text = fs.readFileSync(path.join(pluginDir, file), "utf8");
      for (const m of text.matchAll(/^(?:import|export)\s[^;]*?from\s+"([^"]+)"/gm)) {
        assert.ok(
          m[1].startsWith("node:") || m[1].startsWith("./") || m[1].startsWith("../"),
          `${file} imports ${m[1]}`,
        );
      }
    }
  });
});
