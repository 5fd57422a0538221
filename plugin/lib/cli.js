// Running the clawunits CLI: one argv (never a shell), optional text on stdin, one JSON document back.

import { spawn } from "node:child_process";

export const DEFAULT_CLAWUNITS_PATH = "clawunits";
export const DEFAULT_TIMEOUT_MS = 60_000;
export const DEFAULT_MAX_OUTPUT_BYTES = 4 * 1024 * 1024;
const STDERR_CAP = 64 * 1024;
// After SIGTERM on timeout, how long the CLI gets before SIGKILL.
const KILL_GRACE_MS = 2_000;

// CLI error codes that describe the caller's input or the session's state. OpenClaw passes the message of an
// error named ToolInputError (ToolAuthorizationError: 403) through to the caller of a tool; any other error
// a tool throws is reported as "tool execution failed". These messages are written for the agent, so name
// the errors accordingly.
const INPUT_CODES = new Set([
  "invalid-input",
  "usage",
  "config",
  "openclaw-config",
  "not-found",
  "ambiguous",
  "state",
  "limit",
  "launch-blocked",
]);

/** A failed clawunits call: `message` is the CLI's `error` text; `code` its error code (or the shim's). */
export class ClawunitsError extends Error {
  constructor(message, { code = "error", exitCode = null, hint, stderr } = {}) {
    super(message);
    this.code = code;
    this.exitCode = exitCode;
    if (hint) this.hint = hint;
    if (stderr) this.stderr = stderr;
    if (code === "forbidden") {
      this.name = "ToolAuthorizationError";
      this.status = 403;
    } else if (INPUT_CODES.has(code)) {
      this.name = "ToolInputError";
      this.status = 400;
    } else {
      this.name = "ClawunitsError";
    }
  }
}

function positiveInt(value) {
  const n = Number(value);
  return Number.isFinite(n) && n > 0 ? Math.floor(n) : undefined;
}

/** The shim's own settings (plugin-only config keys) with their defaults. */
export function cliSettings(config = {}) {
  const path = typeof config.clawunitsPath === "string" ? config.clawunitsPath.trim() : "";
  return {
    path: path || DEFAULT_CLAWUNITS_PATH,
    timeoutMs: positiveInt(config.timeoutMs) ?? DEFAULT_TIMEOUT_MS,
    maxOutputBytes: positiveInt(config.maxOutputBytes) ?? DEFAULT_MAX_OUTPUT_BYTES,
  };
}

function killGroup(child, signal) {
  // The CLI runs in its own process group (detached), so journalctl and anything else it started goes too.
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}

function lastLine(text) {
  const lines = text
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
  return (lines.at(-1) ?? "").replace(/^clawunits: error: /, "");
}

/**
 * Run `clawunits ARGV` and resolve with its parsed JSON stdout.
 *
 * A non-zero exit rejects with a ClawunitsError whose message is the CLI's `error` text. So do a timeout
 * (`timeoutMs`, the CLI is killed), stdout beyond `maxOutputBytes` (killed), a missing executable and
 * output that is not JSON. `signal` (a tool call's AbortSignal) kills the CLI too.
 */
export function runClawunits(argv, { stdin, config = {}, signal, env } = {}) {
  const { path, timeoutMs, maxOutputBytes } = cliSettings(config);
  const what = `clawunits ${argv[0] ?? ""}`.trim();
  return new Promise((resolve, reject) => {
    let child;
    try {
      child = spawn(path, argv, { stdio: ["pipe", "pipe", "pipe"], detached: true, env: env ?? process.env });
    } catch (e) {
      reject(new ClawunitsError(`cannot run ${path}: ${e.message}`, { code: "spawn" }));
      return;
    }
    const chunks = [];
    let outBytes = 0;
    let stderr = "";
    let failure = null;
    let settled = false;
    let killTimer = null;

    const abort = (error) => {
      if (failure) return;
      failure = error;
      killGroup(child, "SIGTERM");
      killTimer = setTimeout(() => killGroup(child, "SIGKILL"), KILL_GRACE_MS);
      killTimer.unref?.();
    };
    const timer = setTimeout(
      () => abort(new ClawunitsError(`${what} timed out after ${timeoutMs} ms and was killed`, { code: "timeout" })),
      timeoutMs,
    );
    const onAbort = () => abort(new ClawunitsError(`${what} was cancelled`, { code: "aborted" }));
    if (signal) {
      if (signal.aborted) onAbort();
      else signal.addEventListener("abort", onAbort, { once: true });
    }
    const settle = (fn) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener?.("abort", onAbort);
      fn();
    };

    child.stdout.on("data", (chunk) => {
      outBytes += chunk.length;
      if (outBytes > maxOutputBytes) {
        abort(
          new ClawunitsError(`${what} printed more than ${maxOutputBytes} bytes and was killed`, {
            code: "output-limit",
          }),
        );
        return;
      }
      if (!failure) chunks.push(chunk);
    });
    child.stderr.on("data", (chunk) => {
      if (stderr.length < STDERR_CAP) stderr += chunk.toString("utf8");
    });
    child.on("error", (e) => {
      const message =
        e.code === "ENOENT"
          ? `clawunits executable not found: ${path} (set plugins.entries.clawunits.config.clawunitsPath)`
          : `cannot run ${path}: ${e.message}`;
      settle(() => {
        if (killTimer) clearTimeout(killTimer);
        reject(new ClawunitsError(message, { code: "spawn" }));
      });
    });
    child.on("close", (code, sig) => {
      if (killTimer) clearTimeout(killTimer);
      settle(() => {
        if (failure) {
          reject(failure);
          return;
        }
        const text = Buffer.concat(chunks).toString("utf8").trim();
        let data;
        try {
          data = text ? JSON.parse(text) : undefined;
        } catch {
          data = undefined;
        }
        if (code === 0) {
          if (data === undefined) {
            const shown = text ? `: ${text.slice(0, 200)}` : "";
            reject(new ClawunitsError(`${what} printed no JSON${shown}`, { code: "protocol", exitCode: 0, stderr }));
          } else {
            resolve(data);
          }
          return;
        }
        const exit = sig ? `signal ${sig}` : `code ${code}`;
        const message =
          (data && typeof data.error === "string" && data.error) || lastLine(stderr) || `${what} exited with ${exit}`;
        reject(
          new ClawunitsError(message, {
            code: (data && typeof data.code === "string" && data.code) || "error",
            exitCode: code,
            hint: data?.hint,
            stderr,
          }),
        );
      });
    });
    child.stdin.on("error", () => {
      // EPIPE: the CLI exited (or failed) without reading its stdin; its exit status tells what happened.
    });
    child.stdin.end(stdin === undefined || stdin === null ? "" : String(stdin));
  });
}
