/**
 * The delivery service: inside the running gateway, sends what the clawunits notifier hands over, so no
 * process is started per message. The notifier decides everything (what, to whom, retries); this only
 * delivers. The hand-over directory (clawunits/notifier/gateway.py says it all):
 *
 *   lease        this gateway's pid: the notifier hands items here rather than run `openclaw`
 *   queue/NAME   an item {id, kind: "message"|"wake"|"edit", texts, channel, account, to, sessionKey, agentId,
 *                messageId (the message an edit changes)}
 *   done/NAME    our receipt {id, ok, error, messageIds (what a message became)}, written before queue/NAME is
 *                removed
 *
 * Exactly once: a receipt already in done/ means the item went out (before a crash): it is never sent again.
 * Items to one chat (or one agent session) go out in the order handed over; a hanging or failing chat never
 * holds up another.
 */

import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

// A send that neither succeeds nor fails in this long is reported failed (the notifier retries it).
export const SEND_TIMEOUT_MS = 60_000;
// fs.watch can miss events (and is not promised on every file system): the queue is also read this often.
const RESCAN_MS = 1_000;

// Shared by every registration of the plugin (a config edit restarts the service in the same process): an
// item being sent by the previous service instance is not picked up again by the next.
const inFlight = new Set();
// Items sent whose receipt could not be written yet, with their result.
const unrecorded = new Map();

/**
 * Start delivering from `dir`. `send(item)` (resolving with the sent messages' ids), `wake(item)` and
 * `edit(item)` do the channel work; returns `{stop}`, which waits for the sends under way. An edit only ever
 * changes the message it names: it is never sent as a new message.
 */
export function startDelivery({ dir, send, wake, edit, logger, pid = process.pid }) {
  const queueDir = path.join(dir, "queue");
  const doneDir = path.join(dir, "done");
  for (const d of [dir, queueDir, doneDir]) fs.mkdirSync(d, { recursive: true, mode: 0o700 });
  writeAtomically(path.join(dir, "lease"), `${pid}\n`);
  const lanes = new Map();
  let stopped = false;

  const scan = () => {
    if (stopped) return;
    let names;
    try {
      names = fs.readdirSync(queueDir).filter((n) => !n.startsWith(".")).sort();
    } catch (e) {
      logger?.warn?.(`clawunits: cannot read ${queueDir}: ${messageOf(e)}`);
      return;
    }
    for (const name of names) {
      if (inFlight.has(name)) continue;
      const item = readItem(path.join(queueDir, name));
      if (item === undefined) continue; // removed meanwhile
      inFlight.add(name);
      const lane = laneOf(item);
      // Never a rejected link in a lane: it would skip the chat's later items (and reject unhandled in the gateway).
      const next = (lanes.get(lane) ?? Promise.resolve())
        .then(() => deliverOne(name, item))
        .catch((e) => logger?.warn?.(`clawunits: delivery of ${name} could not be recorded: ${messageOf(e)}`));
      lanes.set(lane, next);
      next.finally(() => {
        inFlight.delete(name);
        if (lanes.get(lane) === next) lanes.delete(lane);
      });
    }
  };

  async function deliverOne(name, item) {
    const receipt = path.join(doneDir, name);
    if (unrecorded.has(name)) {
      // Sent, but its receipt could not be written (a full disk): write it now, never send it again.
      writeAtomically(receipt, JSON.stringify(unrecorded.get(name)));
      unrecorded.delete(name);
    } else if (!fs.existsSync(receipt)) {
      let result;
      try {
        if (item === null) throw new Error("unreadable item");
        const work = item.kind === "wake" ? wake(item) : item.kind === "edit" ? editOf(item) : send(item);
        const ids = await withTimeout(work, SEND_TIMEOUT_MS);
        result = { id: item.id, ok: true };
        if (item.kind === "message" && Array.isArray(ids)) result.messageIds = ids;
      } catch (e) {
        result = { id: item?.id ?? idOf(name), ok: false, error: messageOf(e) };
        logger?.warn?.(`clawunits: delivery of ${name} failed: ${result.error}`);
      }
      unrecorded.set(name, result);
      writeAtomically(receipt, JSON.stringify(result));
      unrecorded.delete(name);
    }
    fs.rmSync(path.join(queueDir, name), { force: true });
  }

  function editOf(item) {
    if (!edit) throw new Error("this delivery service cannot edit messages");
    return edit(item);
  }

  let watcher;
  try {
    watcher = fs.watch(queueDir, () => scan());
    watcher.on("error", () => {}); // the rescan below goes on
  } catch {
    watcher = undefined;
  }
  const timer = setInterval(scan, RESCAN_MS);
  timer.unref?.();
  scan();

  return {
    scan,
    async stop() {
      stopped = true;
      clearInterval(timer);
      watcher?.close();
      await Promise.allSettled([...lanes.values()]);
    },
  };
}

/** The in-process channel work, through the gateway's runtime (api of the current registration). */
export function gatewaySenders(api) {
  return {
    async send(item) {
      const adapter = await api.runtime.channel.outbound.loadAdapter(item.channel);
      if (!adapter?.sendText) throw new Error(`the gateway has no channel ${item.channel} that can send text`);
      const ids = [];
      for (const text of item.texts) {
        const sent = await adapter.sendText({
          cfg: api.runtime.config.current(),
          to: String(item.to),
          text,
          ...(item.account ? { accountId: item.account } : {}),
        });
        ids.push(sent?.messageId != null ? String(sent.messageId) : null);
      }
      return ids;
    },
    async edit(item) {
      const editor = await channelEditor(item.channel);
      if (!editor) throw new Error(`the gateway cannot edit messages of channel ${item.channel}`);
      await editor(String(item.to), String(item.messageId), item.texts[0], {
        cfg: api.runtime.config.current(),
        ...(item.account ? { accountId: item.account } : {}),
        verbose: false,
      });
    },
    async wake(item) {
      const agentId = item.agentId ?? undefined;
      const sessionKey = item.sessionKey ?? `agent:${agentId ?? "main"}:main`;
      for (const text of item.texts) api.runtime.system.enqueueSystemEvent(text, { sessionKey, agentId });
      api.runtime.system.requestHeartbeat({ source: "manual", intent: "immediate", reason: "wake", sessionKey, agentId });
    },
  };
}

// OpenClaw's plugin API sends text through a channel's outbound adapter but has no edit there (its `message.action`
// gateway method is for bundled plugins only). The Telegram channel's own edit (the one `openclaw message edit`
// and its live previews use) is taken from the running OpenClaw's Telegram extension: the same module instance the
// gateway loaded, so it uses the gateway's account, token and Bot API root. Other channels: none (the notifier
// sends their status as new messages).
const EDITORS = { telegram: ["dist/extensions/telegram/runtime-api.js", "editMessageTelegram"] };
const editors = new Map();

export async function channelEditor(channel, root = openclawRoot()) {
  const spec = EDITORS[channel];
  if (!spec || !root) return undefined;
  if (!editors.has(channel)) {
    const file = path.join(root, spec[0]);
    editors.set(
      channel,
      fs.existsSync(file)
        ? import(pathToFileURL(file).href).then((m) => m[spec[1]]).catch(() => undefined)
        : Promise.resolve(undefined),
    );
  }
  return editors.get(channel);
}

/** The directory of the OpenClaw package this gateway runs from (its launcher is argv[1]). */
export function openclawRoot(launcher = process.argv[1]) {
  let dir;
  try {
    dir = path.dirname(fs.realpathSync(launcher));
  } catch {
    return undefined;
  }
  for (let i = 0; i < 5; i++, dir = path.dirname(dir)) {
    try {
      if (JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")).name === "openclaw") return dir;
    } catch {
      // not the package's directory: look further up
    }
  }
  return undefined;
}

function laneOf(item) {
  if (item === null) return "unreadable";
  if (item.kind === "wake") return `wake:${item.sessionKey ?? ""}`;
  return `${item.channel}|${item.account ?? ""}|${item.to}`;
}

/** The item in a queue file; null when it cannot be parsed, undefined when it is gone. */
function readItem(file) {
  let text;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
  try {
    const item = JSON.parse(text);
    return item && typeof item === "object" && Array.isArray(item.texts) ? item : null;
  } catch {
    return null;
  }
}

function idOf(name) {
  return name.replace(/\.json$/, "");
}

function writeAtomically(file, text) {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  const fd = fs.openSync(tmp, "w", 0o600);
  try {
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

function withTimeout(promise, ms) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer from the channel after ${ms / 1000} s`)), ms);
    timer.unref?.();
  });
  return Promise.race([Promise.resolve(promise), timeout]).finally(() => clearTimeout(timer));
}

function messageOf(e) {
  return e instanceof Error ? e.message : String(e);
}
