"""Plan approval: how an answer to a plan reads (``approve [vN] [mode]``, ``reject [vN] <feedback>``).

One definition serves ``clawunits respond`` (which checks an answer against the plan the session waits on and
posts it in its normal form) and the runner (which reads that normal form back).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from clawunits.errors import InvalidInput
from clawunits.records import shorten

# Modes a session can continue in once its plan is approved. Claude Code refuses to switch to
# bypassPermissions unless it was started allowing it, so that one is not offered.
EXECUTION_MODES = ("acceptEdits", "default")
APPROVE_WORDS = frozenset({"approve", "approved", "yes", "y", "ok", "allow", "lgtm"})
REJECT_WORDS = frozenset({"reject", "rejected", "no", "n", "deny"})
APPROVE, REJECT = "approve", "reject"
_VERSION = re.compile(r"^v(\d{1,6})$", re.IGNORECASE)


@dataclass(frozen=True)
class PlanAnswer:
    """An answer to a plan: ``decision`` approve/reject, the plan ``version`` it names (if any), the
    execution ``mode`` an approval asks for (if any), and a rejection's ``feedback``."""

    decision: str
    version: int | None = None
    mode: str | None = None
    feedback: str = ""
    # Words after an approval that are neither a version nor a mode (refused when it answers a plan).
    unread: str = ""

    def check(self) -> PlanAnswer:
        """This answer, or :class:`InvalidInput` for an approval with words it does not understand (feedback
        belongs to a rejection, and a typo in the mode must not silently pick another one)."""
        if self.unread:
            raise InvalidInput(
                f"cannot read {self.unread!r} in an approval",
                hint=f"approve [vN] [{' | '.join(EXECUTION_MODES)}]; to ask for changes: reject <feedback>",
            )
        return self

    def text(self, version: int) -> str:
        """The normal form posted to the session's inbox, naming the plan version it answers."""
        if self.decision == APPROVE:
            return f"approve v{version}" + (f" {self.mode}" if self.mode else "")
        return f"reject v{version}" + (f" {self.feedback}" if self.feedback else "")


def parse_answer(text: str) -> PlanAnswer | None:
    """The plan answer in ``text``, or None when it does not start with an approve/reject word."""
    words = text.strip().split()
    first = words[0].lower().rstrip(".!,:") if words else ""
    if first not in APPROVE_WORDS and first not in REJECT_WORDS:
        return None
    rest = words[1:]
    version = None
    if rest and (m := _VERSION.match(rest[0].rstrip(".!,:"))):
        version = int(m.group(1))
        rest = rest[1:]
    if first in REJECT_WORDS:
        # The feedback keeps its own line breaks: cut the decision (and version) words off the front only.
        feedback = text.strip()[len(words[0]) :].lstrip()
        if version is not None:
            feedback = feedback[len(words[1]) :].lstrip()
        return PlanAnswer(REJECT, version, feedback=feedback)
    mode = next((m for m in EXECUTION_MODES if rest and m.lower() == rest[0].rstrip(".!,").lower()), None)
    if mode is not None:
        rest = rest[1:]
    return PlanAnswer(APPROVE, version, mode=mode, unread=shorten(" ".join(rest), 60))
