// clawunits for OpenClaw: agent tools, chat commands and gateway RPC methods over the clawunits CLI.
//
// The plugin holds no session logic and formats nothing. Every surface turns its parameters (and what
// OpenClaw's context says about the caller) into one `clawunits ... --json` call, through the operation's
// parameter table in lib/operations.js, and answers with the CLI's JSON: its `display` text for tools and
// commands. Sessions live in systemd user units and outlive the gateway; clawunits' notifier delivers their
// notifications.

import { ClawunitsError, cliSettings, runClawunits } from "./lib/cli.js";
import { COMMANDS } from "./lib/commands.js";
import { callerArgs, channelString, commandCaller, toolCaller } from "./lib/context.js";
import { gatewaySenders, startDelivery } from "./lib/delivery.js";
import { OPERATIONS, TOOL_NAMES } from "./lib/operations.js";
import { cliCall, readValues, toolSchema } from "./lib/params.js";

export { ClawunitsError, runClawunits } from "./lib/cli.js";
export { DEFAULT_RESUME_PROMPT, TOOL_NAMES } from "./lib/operations.js";

export const PLUGIN_ID = "clawunits";

// ------------------------------------------------------------------------------- operations (CLI calls)

/**
 * `call(operation, values, signal, surface, who)`: the operation's one CLI call for `values` (by key); resolves
 * with its JSON. `surface` ("tool" or "chat") tells the CLI who reads its display text, for the operations whose
 * text names a next step (`claude_respond` for an agent, `/claude_respond` in a chat). `who` is the caller
 * (lib/context.js: a command's sender, a tool's requester; none for RPC): clawunits decides what they may do.
 */
export function caller(run) {
  return (name, values, signal, surface, who) => {
    const op = OPERATIONS[name];
    op.check?.(values);
    const { argv, stdin } = cliCall(op.command, op.params, values);
    if (surface && op.surfaced) argv.splice(op.command.length + 1, 0, "--surface", surface);
    return run([...callerArgs(who), ...argv], { stdin, signal });
  };
}

/** The text the CLI shows for `data` (every --json answer carries it as `display`). */
function displayOf(data, name) {
  if (typeof data?.display === "string") return data.display;
  throw new ClawunitsError(`clawunits ${OPERATIONS[name].command[0]} answered without a display text`, {
    code: "protocol",
  });
}

// ------------------------------------------------------------------------------------------ agent tools

const TOOLS = Object.fromEntries(
  Object.entries(OPERATIONS)
    .filter(([, op]) => op.tool)
    .map(([name, op]) => [op.tool.name, name]),
);

export function createTool(toolName, ctx, config, call) {
  const name = TOOLS[toolName];
  const { params, tool } = OPERATIONS[name];
  return {
    name: toolName,
    label: tool.label,
    description: tool.description,
    parameters: toolSchema(params),
    async execute(_toolCallId, given, signal) {
      // Errors are thrown (OpenClaw reports a tool error) with the CLI's own message.
      const read = readValues(params, "tool", given ?? {});
      const values = tool.context ? tool.context(read, ctx ?? {}, config) : read;
      const data = await call(name, values, signal, "tool", toolCaller(ctx ?? {}));
      return { content: [{ type: "text", text: displayOf(data, name) }], details: data };
    },
  };
}

// ----------------------------------------------------------------------------------------- chat commands

/** A command's reply; a failure becomes a readable reply too (a command must not crash). */
export async function runCommand(name, ctx, config, call) {
  const args = typeof ctx?.args === "string" ? ctx.args.trim() : "";
  try {
    const parsed = COMMANDS[name].parse(args, ctx ?? {}, config);
    if (typeof parsed === "string") return { text: parsed };
    const [operation, values] = parsed;
    return { text: displayOf(await call(operation, values, undefined, "chat", commandCaller(ctx ?? {})), operation) };
  } catch (e) {
    return { text: `⚠️ ${e instanceof Error ? e.message : String(e)}` };
  }
}

// ----------------------------------------------------------------------------------------- gateway RPC

const RPC = Object.fromEntries(Object.entries(OPERATIONS).filter(([, op]) => op.rpc));

export const RPC_METHODS = Object.keys(RPC).map((name) => `claude-code.${name}`);

/** `claude-code.<name>`: params (camelCase or snake_case) → one operation; answers the CLI's JSON. */
export async function runRpc(name, params, respond, call) {
  try {
    const operation = RPC[name].rpc.route?.(params) ?? name;
    respond(true, await call(operation, readValues(OPERATIONS[operation].params, "rpc", params ?? {})));
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
export function syncConfig(config, run, logger, { force = false, stateDir } = {}) {
  const key = JSON.stringify({ ...gatewayFacts(config ?? {}, process.env, stateDir), ...(config ?? {}) });
  if (lastSync.key === key && (lastSync.pending || !force)) return lastSync.promise;
  lastSync.key = key;
  lastSync.pending = true;
  const promise = run(["config", "sync", "--json"], { stdin: key })
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

/**
 * Where this gateway keeps its state and config, for the notifier's `openclaw` calls (when it cannot hand a
 * message to this gateway): filled in from the gateway's own environment where the plugin config is silent.
 */
export function gatewayFacts(config, env = process.env, stateDir = undefined) {
  const facts = {
    openclawStateDir: env.OPENCLAW_STATE_DIR ?? stateDir,
    openclawConfigPath: env.OPENCLAW_CONFIG_PATH,
    openclawProfile: env.OPENCLAW_PROFILE,
  };
  return Object.fromEntries(Object.entries(facts).filter(([k, v]) => v && config[k] === undefined));
}

/** The gateway's state directory as OpenClaw resolves it (OPENCLAW_STATE_DIR, OPENCLAW_HOME, --profile). */
function gatewayStateDir(api) {
  try {
    return api.runtime?.state?.resolveStateDir?.() || undefined;
  } catch {
    return undefined;
  }
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
  const stateDir = gatewayStateDir(api);
  const call = caller(run);

  for (const name of TOOL_NAMES) {
    api.registerTool((ctx) => createTool(name, ctx, config, call), { name });
  }
  for (const [name, spec] of Object.entries(COMMANDS)) {
    api.registerCommand({
      name,
      description: spec.description,
      acceptsArgs: spec.acceptsArgs,
      requireAuth: true,
      handler: (ctx) => runCommand(name, ctx, config, call),
    });
  }
  for (const [name, op] of Object.entries(RPC)) {
    api.registerGatewayMethod(`claude-code.${name}`, ({ params, respond }) => runRpc(name, params, respond, call), {
      scope: op.rpc.scope,
    });
  }
  let delivery;
  api.registerService({
    id: "clawunits-config",
    // The config sync, then the delivery of what the notifier hands over (lib/delivery.js), in this gateway.
    start: async () => {
      const synced = await syncConfig(config, run, api.logger, { force: true, stateDir });
      if (synced?.deliveryDir && !delivery) {
        delivery = startDelivery({ dir: synced.deliveryDir, ...gatewaySenders(api), logger: api.logger });
        api.logger?.info?.(`clawunits: delivering notifications from ${synced.deliveryDir}`);
      }
    },
    stop: async () => {
      await delivery?.stop();
      delivery = undefined;
    },
  });

  // register() also runs for discovery and setup passes (sometimes with an empty config): side effects
  // only in full mode.
  if (api.registrationMode === "full") {
    void syncConfig(config, run, api.logger, { stateDir });
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
