// The parameter tables (lib/operations.js) and what lib/params.js generates from them.

import assert from "node:assert/strict";
import fs from "node:fs";
import { describe, it } from "node:test";

import { DEFAULT_RESUME_PROMPT, OPERATIONS, PERMISSION_MODES, STATUSES } from "../lib/operations.js";
import { cliCall, readValues, toolSchema } from "../lib/params.js";

const manifest = JSON.parse(fs.readFileSync(new URL("../openclaw.plugin.json", import.meta.url), "utf8"));

describe("parameter tables", () => {
  it("state each enumeration once: the permission modes are the manifest's", () => {
    assert.deepEqual(PERMISSION_MODES, manifest.configSchema.properties.permissionMode.enum);
    assert.deepEqual(toolSchema(OPERATIONS.launch.params).properties.permission_mode.enum, PERMISSION_MODES);
    assert.deepEqual(toolSchema(OPERATIONS.sessions.params).properties.status.enum, STATUSES);
  });

  it("give every CLI option, tool parameter and RPC name once per operation", () => {
    for (const [name, op] of Object.entries(OPERATIONS)) {
      const flags = op.params.filter((p) => p.flag).map((p) => p.flag);
      assert.equal(new Set(flags).size, flags.length, `${name}: a CLI option twice`);
      const keys = op.params.map((p) => p.key);
      assert.equal(new Set(keys).size, keys.length, `${name}: a key twice`);
      for (const surface of ["tool", "rpc"]) {
        const names = op.params.flatMap((p) => (p[surface] === undefined ? [] : [p[surface]].flat()));
        assert.equal(new Set(names).size, names.length, `${name}: a ${surface} name twice`);
      }
      for (const p of op.params) {
        assert.ok(p.flag || p.positional || p.kind === "text", `${name}.${p.key} reaches the CLI`);
        if (p.tool) assert.ok(p.description, `${name}.${p.key} has a description`);
      }
    }
  });

  it("build the argv: options in table order, positionals after --, user text on stdin", () => {
    const { argv, stdin } = cliCall(OPERATIONS.respond.command, OPERATIONS.respond.params, {
      session: "-odd",
      message: "hi",
      planVersion: 2,
      interrupt: true,
    });
    assert.deepEqual(argv, ["respond", "--json", "--interrupt", "--plan-version=2", "--", "-odd", "-"]);
    assert.equal(stdin, "hi");
    assert.deepEqual(cliCall(OPERATIONS.sessions.command, OPERATIONS.sessions.params, {}).argv, ["sessions", "--json"]);
    assert.deepEqual(cliCall(OPERATIONS.resumable.command, [], {}).argv, ["resume", "--list", "--json"]);
    const resumed = cliCall(OPERATIONS.resume.command, OPERATIONS.resume.params, { session: "s" });
    assert.deepEqual(resumed.argv, ["launch", "--json", "--resume=s", "--", "-"]);
    assert.equal(resumed.stdin, DEFAULT_RESUME_PROMPT);
    assert.throws(() => cliCall(OPERATIONS.kill.command, OPERATIONS.kill.params, {}), {
      message: "Missing required parameter: session",
    });
  });

  it("read a request by the surface's names, the first given winning", () => {
    const params = OPERATIONS.launch.params;
    assert.deepEqual(readValues(params, "rpc", { max_budget_usd: "2", maxBudgetUsd: 3, origin_channel: "gateway" }), {
      ...readValues(params, "rpc", {}),
      maxBudgetUsd: 3,
    });
    assert.throws(() => readValues(params, "tool", { max_budget_usd: "lots" }), {
      message: "max_budget_usd must be a number",
    });
    assert.equal(readValues(OPERATIONS.respond.params, "tool", { user_initiated: true }).userInitiated, true);
  });
});
