// What the parameter tables of lib/operations.js turn into: a tool's JSON schema, the values read from a tool
// call or an RPC request, and the clawunits argv (and stdin) of one call.
//
// A parameter is { key, kind, ... }:
//   key         the name the operation knows it by (camelCase); chat commands give values by key
//   kind        "string" | "number" | "flag" | "list" | "channel" | "text" (user text: goes on stdin as "-")
//   flag        the CLI option (`--flag=value`, or `--flag` for kind "flag"); none for positionals and "text"
//   positional  true: an argument after "--" (in table order, with "-" for a "text" parameter)
//   tool        its name in the agent tool's schema, or [name, ...accepted aliases]; absent: not a tool parameter
//   rpc         the names a gateway RPC request may give it by, first found wins; absent: not an RPC parameter
//   description, schema   the tool schema's description and extra keywords (enum, minimum, ...)
//   required    the call is refused without it
//   fallback    the value when none is given (text parameters)
//   when        (values) => false leaves the option out

import { ClawunitsError } from "./cli.js";

export const invalid = (message) => new ClawunitsError(message, { code: "invalid-input" });

export function str(value) {
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  if (typeof value !== "string") return undefined;
  return value.trim() || undefined;
}

export function bool(value) {
  return value === true || value === "true" || value === 1 || value === "1";
}

function num(value, name) {
  if (value === undefined || value === null || value === "") return undefined;
  const n = typeof value === "string" ? Number(value.trim()) : value;
  if (typeof n !== "number" || !Number.isFinite(n)) throw invalid(`${name} must be a number`);
  return n;
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

/** A channel given explicitly (RPC): the seed's placeholder words mean none; anything else clawunits checks. */
function explicitChannel(value) {
  const s = str(value);
  return s && !["unknown", "gateway", "command"].includes(s) ? s : undefined;
}

/** The raw value of a request parameter under `name`: how each kind reads it (`name` for error messages). */
const READ = {
  string: (raw) => str(raw),
  number: (raw, name) => num(raw, name),
  flag: (raw) => bool(raw),
  list: (raw) => list(raw),
  channel: (raw) => explicitChannel(raw),
  // User text goes to the CLI as it is; only a fallback (a default prompt) replaces a blank one.
  text: (raw, _name, param) => (param.fallback === undefined ? raw : str(raw)),
};

const SCHEMA_TYPES = {
  string: { type: "string" },
  number: { type: "number" },
  flag: { type: "boolean" },
  list: { type: "array", items: { type: "string" } },
  channel: { type: "string" },
  text: { type: "string" },
};

const names = (spec) => (spec === undefined ? [] : Array.isArray(spec) ? spec : [spec]);

/** The first of `keys` present in `params`. */
function pick(params, keys) {
  for (const key of keys) {
    if (params && params[key] !== undefined && params[key] !== null) return params[key];
  }
  return undefined;
}

/** The values of `params` (a tool call's or an RPC request's) under the names `surface` ("tool" or "rpc") gives. */
export function readValues(table, surface, params) {
  const values = {};
  for (const param of table) {
    const keys = names(param[surface]);
    if (keys.length) values[param.key] = READ[param.kind](pick(params, keys), keys[0], param);
  }
  return values;
}

/** The JSON schema of an agent tool: the table's parameters that have a tool name. */
export function toolSchema(table) {
  const properties = {};
  const required = [];
  for (const param of table) {
    const [name] = names(param.tool);
    if (!name) continue;
    properties[name] = { ...SCHEMA_TYPES[param.kind], description: param.description, ...param.schema };
    if (param.required) required.push(name);
  }
  return { type: "object", additionalProperties: false, ...(required.length ? { required } : {}), properties };
}

function requiredValue(value, name) {
  if (value === undefined || value === null || (typeof value === "string" && !value.trim())) {
    throw invalid(`Missing required parameter: ${name}`);
  }
  if (typeof value !== "string" && typeof value !== "number") throw invalid(`${name} must be a string`);
  return value;
}

// `--name=value` keeps a value that starts with "-" a value; "--" ends the options before the positionals.
function option(param, value) {
  if (param.kind === "flag") return value ? [`--${param.flag}`] : [];
  const shown = param.kind === "list" ? (value?.length ? value.join(",") : undefined) : value;
  return shown === undefined || shown === null || shown === "" ? [] : [`--${param.flag}=${shown}`];
}

/**
 * The CLI call for `values` (by key): `{argv, stdin}`. Options follow the table's order; positionals (and "-"
 * for user text, which goes on stdin) come after "--" when the operation has any.
 */
export function cliCall(command, table, values) {
  const options = [];
  const positionals = [];
  let stdin;
  for (const param of table) {
    let value = values[param.key] ?? param.fallback;
    if (param.required) value = requiredValue(value, param.key);
    if (param.kind === "text") {
      positionals.push("-");
      stdin = value;
    } else if (param.positional) {
      if (value !== undefined && value !== null && value !== "") positionals.push(String(value));
    } else if (!param.when || param.when(values)) {
      options.push(...option(param, value));
    }
  }
  const hasPositionals = table.some((p) => p.positional || p.kind === "text");
  return { argv: [...command, "--json", ...options, ...(hasPositionals ? ["--", ...positionals] : [])], stdin };
}
