"""Reading the user's answers: is a turn's text a question, a permission answer, a plan answer that is stale."""

from __future__ import annotations

from clawunits import plans

ALLOW_WORDS = frozenset({"allow", "yes", "y", "approve", "ok", "allowed"})
DENY_WORDS = frozenset({"deny", "no", "n", "reject", "denied"})


def is_question(text: str) -> bool:
    """Does the turn's final text end by asking the user something?"""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        return False
    return lines[-1].rstrip("*_`'\" )]").endswith("?")


def decision(text: str) -> tuple[bool, str]:
    """``allow``/``deny`` (and synonyms), or any other text: a denial with that text as the reason."""
    words = text.strip().split(maxsplit=1)
    first = words[0].lower().rstrip(".!,") if words else ""
    rest = words[1] if len(words) > 1 else ""
    if first in ALLOW_WORDS:
        return True, ""
    if first in DENY_WORDS:
        return False, rest
    return False, text.strip()


def rejection(version: int, feedback: str) -> str:
    """What Claude reads when the user rejects its plan: the feedback, and to plan again."""
    if not feedback:
        return f"The user rejected this plan (v{version}) without saying why. Stay in plan mode and ask what to change."
    return (
        f"The user rejected this plan (v{version}). Their feedback:\n{feedback}\n\n"
        "Stay in plan mode: revise the plan accordingly and call ExitPlanMode again."
    )


def stale_plan_answer(text: str, waiting: int | None) -> int | None:
    """The older plan version an answer names while plan ``waiting`` is open; None if it answers this one."""
    if waiting is None:
        return None
    answer = plans.parse_answer(text)
    if answer is None or answer.version is None or answer.version == waiting:
        return None
    return answer.version
