"""Reading a Messages API request: which directives answer it, and the plan-mode exchange."""

from __future__ import annotations

from typing import Any

from clawunits.testing.directives import (
    INTERRUPTED_MARKER,
    PLAN_FILE,
    PLAN_TOOL,
    REMINDER,
    Plan,
    bash_input,
    find_directives,
    plan_from_directives,
    split_bash2,
)


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        return [b for b in content if isinstance(b, dict)]
    return []


def _visible(text: str) -> str:
    """Text without ``<system-reminder>`` sections."""
    return REMINDER.sub("", text).strip()


def _result_text(block: dict[str, Any]) -> str:
    content = block.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(b.get("text", "")) for b in content if isinstance(b, dict) and b.get("type") == "text")
    return ""


def first_line(text: str, limit: int = 200) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:limit]
    return ""


def _newest_directive_text(blocks: list[dict[str, Any]]) -> tuple[str, list[tuple[str, str]]] | None:
    """The newest text block (by position) that carries directives, with them; None if there is none.

    A block holding several prompts (a merged interrupted prompt) is cut at its last
    ``[Request interrupted by user`` marker first, so only the newest prompt counts.
    """
    for block in reversed(blocks):
        if block.get("type") != "text":
            continue
        text = _visible(str(block.get("text", "")))
        cut = text.rfind(INTERRUPTED_MARKER)
        if cut >= 0:
            tail = text[cut:].partition("]")[2]
            if find_directives(tail):
                text = tail
        directives = find_directives(text)
        if directives:
            return text, directives
    return None


def _prompt_text(blocks: list[dict[str, Any]]) -> str:
    """The newest non-empty visible text of a user message (for the default reply)."""
    for block in reversed(blocks):
        if block.get("type") == "text":
            text = _visible(str(block.get("text", "")))
            if text and not text.startswith(INTERRUPTED_MARKER):
                return text
    return ""


def _newest_turn(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The blocks of the user messages after the last assistant message, in order: the API reads consecutive
    user messages as one turn (OpenClaw sends its internal context as a user message after the prompt)."""
    turn: list[dict[str, Any]] = []
    for message in reversed(messages):
        if message.get("role") != "user":
            break
        turn[:0] = _blocks(message)
    if not turn:  # an assistant prefill ends the request: its user message still is the prompt
        turn = _blocks(next(m for m in reversed(messages) if m.get("role") == "user"))
    return turn


def plan_for(body: dict[str, Any]) -> Plan:
    """Decide the reply to one ``/v1/messages`` request body."""
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    if not any(m.get("role") == "user" for m in messages):
        return Plan(text="Scripted reply: ")
    blocks = _newest_turn(messages)
    results = [i for i, b in enumerate(blocks) if b.get("type") == "tool_result"]
    if not results:
        found = _newest_directive_text(blocks)
        if found is None:
            return plan_from_directives([], _prompt_text(blocks))
        if _has_plan(found[1]):
            return plan_mode_reply(body, found[1], found[0], [])
        plan = plan_from_directives(found[1], found[0])
        plan.key = f"{len(body.get('messages') or [])}:{found[0]}"
        return plan
    # A tool round came back. A directive text placed after the results is a new prompt.
    after = _newest_directive_text(blocks[results[-1] + 1 :])
    if after is not None:
        if _has_plan(after[1]):
            return plan_mode_reply(body, after[1], after[0], [])
        return plan_from_directives(after[1], after[0])
    reply = Plan(text="Tool result: " + first_line(_visible(_result_text(blocks[results[-1]]))))
    # Walk back to the prompt that started this tool loop; continue a bash2 if its second round is owed.
    rounds = 0
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if message.get("role") != "user":
            continue
        mblocks = _blocks(message)
        if any(b.get("type") == "tool_result" for b in mblocks):
            rounds += 1
        found = _newest_directive_text(mblocks)
        if found is None:
            continue
        if _has_plan(found[1]):
            return plan_mode_reply(body, found[1], found[0], messages[index + 1 :])
        bash2 = [arg for name, arg in found[1] if name == "bash2"]
        if bash2 and rounds < 2:
            return Plan(tools=[("Bash", bash_input(split_bash2(bash2[-1])[1]))])
        break
    return reply


def _has_plan(directives: list[tuple[str, str]]) -> bool:
    return any(name == "plan" for name, _ in directives)


def plan_file(body: dict[str, Any]) -> str | None:
    """The plan file Claude Code's newest plan-mode reminder names, if any."""
    found = PLAN_FILE.findall(_all_text(body))
    return found[-1] if found else None


def _all_text(body: dict[str, Any]) -> str:
    system = body.get("system")
    parts = [system] if isinstance(system, str) else [str(b.get("text", "")) for b in _blocks({"content": system})]
    for message in body.get("messages") or []:
        if isinstance(message, dict):
            parts += [str(b.get("text", "")) for b in _blocks(message) if b.get("type") == "text"]
    return "\n".join(parts)


def plan_mode_reply(
    body: dict[str, Any], directives: list[tuple[str, str]], prompt: str, since: list[dict[str, Any]]
) -> Plan:
    """The next step of a ``[[plan: …]]`` prompt, from the tool rounds ``since`` it (see the module doc)."""
    variants = [v.strip() for v in next(arg for name, arg in directives if name == "plan").split(";;")]
    uses = {
        str(b.get("id")): b
        for m in since
        if m.get("role") == "assistant"
        for b in _blocks(m)
        if b.get("type") == "tool_use"
    }
    rounds = [
        (str(uses.get(str(b.get("tool_use_id")), {}).get("name", "")), b)
        for m in since
        if m.get("role") == "user"
        for b in _blocks(m)
        if b.get("type") == "tool_result"
    ]
    answers = [r for name, r in rounds if name == PLAN_TOOL]
    path = plan_file(body)

    def propose(text: str) -> Plan:
        if path:
            return Plan(tools=[("Write", {"file_path": path, "content": text})])
        return Plan(tools=[(PLAN_TOOL, {"plan": text})])

    if any(not r.get("is_error") for r in answers):
        # Approved: carry out the rest of the prompt, then report tool results as usual.
        if rounds[-1][0] == PLAN_TOOL:
            rest = [(n, a) for n, a in directives if n != "plan"]
            return plan_from_directives(rest, prompt) if rest else Plan(text="Plan approved.")
        return Plan(text="Tool result: " + first_line(_visible(_result_text(rounds[-1][1]))))
    if not rounds:
        return propose(variants[0])
    if rounds[-1][0] == PLAN_TOOL:
        feedback = _feedback(_result_text(rounds[-1][1]))
        if len(answers) >= len(variants):
            return Plan(text=f"Plan rejected: {feedback}")
        return propose(f"{variants[len(answers)]}\n\n(revised after: {feedback})")
    # The plan file was written: ask for approval (the CLI puts the file's text in the input).
    return Plan(tools=[(PLAN_TOOL, {})])


def _feedback(result: str) -> str:
    """The first line of what the user said in a rejection (the runner prefixes it with a line of its own)."""
    lines = [ln.strip() for ln in _visible(result).splitlines() if ln.strip()]
    said = [ln for ln in lines if not ln.startswith(("The user rejected", "Stay in plan mode"))]
    return (said or lines or [""])[0][:200]
