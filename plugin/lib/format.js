// The texts tools and chat commands answer with, built from the CLI's JSON (the seed plugin's wording).
// Where the CLI's JSON already carries the text (`message`, `display`), it is used as it is.

export const RULE = "─".repeat(60);

const ICONS = { starting: "🟡", running: "🟢", waiting: "💬", completed: "✅", failed: "❌", killed: "⛔" };
const WAITING_FOR = {
  question: "an answer (Claude asked a question)",
  input: "the next instruction (turn finished)",
  permission: "a permission answer (allow / deny / reason)",
  plan: "plan approval (approve / reject <feedback>)",
};
const TERMINAL = new Set(["completed", "failed", "killed"]);

/** `45s`, `2m15s` or `1h05m`. */
export function duration(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(Number(ms))) return "n/a";
  let secs = Math.floor(Number(ms) / 1000);
  if (secs < 60) return `${secs}s`;
  let mins = Math.floor(secs / 60);
  secs %= 60;
  if (mins < 60) return `${mins}m${secs}s`;
  const hours = Math.floor(mins / 60);
  mins %= 60;
  return `${hours}h${String(mins).padStart(2, "0")}m`;
}

/** The text on one line, in quotes, cut to `limit` characters with "..." appended when cut. */
export function quoted(textValue, limit) {
  const flat = String(textValue ?? "")
    .split(/\s+/)
    .filter(Boolean)
    .join(" ");
  return flat.length > limit ? `"${flat.slice(0, limit)}..."` : `"${flat}"`;
}

const upper = (s) => String(s ?? "").toUpperCase();

/** claude_launch (surface "tool") or /claude, /claude_resume (surface "command"). */
export function launchedText(s, surface = "tool") {
  if (surface === "command") {
    const lines = ["Session launched.", `  Name: ${s.name}`, `  ID: ${s.id}`];
    if (s.resumedFrom) lines.push(`  Resumed from: ${s.resumedFrom}${s.forked ? " (forked)" : ""}`);
    if (s.worktree) lines.push(`  Worktree: branch ${s.worktree.branch} from ${s.worktree.base}`);
    lines.push(`  Prompt: ${quoted(s.prompt, 80)}`, `  Status: ${s.status}`);
    return lines.join("\n");
  }
  const lines = [
    "Session launched successfully.",
    `  Name: ${s.name}`,
    `  ID: ${s.id}`,
    `  Dir: ${s.workdir}`,
    `  Model: ${s.model || "default"}`,
    `  Prompt: ${quoted(s.prompt, 80)}`,
  ];
  if (s.worktree) lines.push(`  Worktree: branch ${s.worktree.branch} from ${s.worktree.base}`);
  if (s.resumedFrom) lines.push(`  Resume: ${s.resumedFrom}${s.forked ? " (forked)" : ""}`);
  lines.push(
    s.multiTurn === false
      ? "  Mode: single-turn (fire-and-forget)"
      : "  Mode: multi-turn (use claude_respond to send follow-up messages)",
    "",
    "Use claude_sessions to check status, claude_output to see output.",
  );
  return lines.join("\n");
}

/** claude_respond (tool) or /claude_respond (command). */
export function respondedText(r, message, surface = "tool") {
  if (surface === "command") {
    const lines = [`Message sent to ${r.name} [${r.id}].`];
    if (r.interrupted) lines.push("  (interrupted current turn)");
    lines.push(`  ${quoted(message, 80)}`);
    return lines.join("\n");
  }
  const lines = [`Message sent to session ${r.name} [${r.id}].`];
  if (r.interrupted) lines.push("  (interrupted current turn first)");
  lines.push(`  Message: ${quoted(message, 80)}`, "Use claude_output to see the response.");
  return lines.join("\n");
}

/** One session in a listing. */
export function sessionEntry(s) {
  const mode = s.multiTurn === false ? "single-turn" : "multi-turn";
  const icon = ICONS[s.status] ?? "❓";
  const lines = [
    `${icon} ${s.name} [${s.id}] — ${upper(s.status)} (${duration(s.durationMs)}) ${mode}`,
    `   📁 ${s.workdir}`,
    `   📝 ${quoted(s.prompt, 80)}`,
  ];
  if (s.worktree) {
    const gone = s.worktree.removed ? " (removed)" : "";
    lines.push(`   🌿 ${s.worktree.branch} from ${s.worktree.base}${gone}`);
  }
  if (s.costUsd) lines.push(`   💰 $${Number(s.costUsd).toFixed(4)}`);
  if (s.claudeSessionId) lines.push(`   🔗 Claude ID: ${s.claudeSessionId}`);
  if (s.resumedFrom) lines.push(`   ↩️  Resumed from: ${s.resumedFrom}${s.forked ? " (forked)" : ""}`);
  if (s.status === "waiting" && s.waitingFor) {
    const plan = s.waitingFor === "plan" ? `: plan v${s.planVersion}` : "";
    lines.push(`   ⏳ waiting for ${WAITING_FOR[s.waitingFor] ?? s.waitingFor}${plan}`);
  }
  if (s.reason && TERMINAL.has(s.status)) lines.push(`   ${s.status === "completed" ? "🏁" : "⚠️"} ${s.reason}`);
  return lines.join("\n");
}

export function sessionsText(data) {
  const sessions = Array.isArray(data?.sessions) ? data.sessions : [];
  return sessions.length ? sessions.map(sessionEntry).join("\n\n") : "No sessions found.";
}

/** claude_output: a header, a rule, the entries. */
export function outputText(o) {
  const head = `Session: ${o.name} [${o.id}] | Status: ${upper(o.status)} | Duration: ${o.duration ?? duration(o.durationMs)}`;
  const lines = Array.isArray(o.lines) && o.lines.length ? o.lines.join("\n") : "(no output yet)";
  return [head, RULE, lines].join("\n");
}

function ago(ts, now = Date.now()) {
  const t = Date.parse(ts ?? "");
  return Number.isFinite(t) ? `${duration(Math.max(0, now - t))} ago` : "some time ago";
}

/** /claude_resume --list. */
export function resumableText(data, now = Date.now()) {
  const sessions = Array.isArray(data?.sessions) ? data.sessions : [];
  if (!sessions.length) return "No resumable sessions found. Sessions are persisted after completion.";
  const lines = ["Resumable sessions:"];
  for (const s of sessions) {
    lines.push(
      `  ${s.name} — ${s.status} ${ago(s.completedAt, now)}`,
      `    Claude ID: ${s.claudeSessionId}`,
      `    📁 ${s.workdir}`,
      `    📝 ${quoted(s.prompt, 60)}`,
    );
  }
  return lines.join("\n");
}

/** claude_fg / /claude_fg: the CLI's own text; a chat command points at /claude_bg. */
export function foregroundText(data, surface = "tool") {
  const message = String(data?.message ?? "");
  return surface === "command" ? message.replace("Use claude_bg to detach.", "Use /claude_bg to detach.") : message;
}
