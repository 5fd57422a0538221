"""Usage limits (Claude Code's ``rate_limit_event``): the last utilization, one warning per window, and parking
the session when a window is exhausted: recorded ``limited``, its timer armed, its runner ends."""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime
from typing import Any

from claude_agent_sdk import RateLimitInfo, ResultMessage

from clawunits import records as R
from clawunits.runner.live import LiveSession, Outcome
from clawunits.state.models import EndCause, Status
from clawunits.systemd import resume_timer
from clawunits.systemd.units import UserManager

# A 429 that came without Claude Code's usage-limit report (an API key's rate limit, say) says neither the
# window nor its reset: the session is parked this long, under the window name "rate_limit".
REFUSED_429_SEC = 300
REFUSED_429_WINDOW = "rate_limit"


def utilization(info: RateLimitInfo) -> float | None:
    """The window's utilization (0..1): the event's own, or its window's reading (a refusal carries only that)."""
    if info.utilization is not None:
        return float(info.utilization)
    windows = info.raw.get("unifiedWindows") if isinstance(info.raw, dict) else None
    reading = windows.get(info.rate_limit_type or "") if isinstance(windows, dict) else None
    value = reading.get("utilization") if isinstance(reading, dict) else None
    return float(value) if isinstance(value, int | float) else None


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class UsageLimits:
    """What the runner knows of the usage windows: fed by :meth:`on_event`, asked by :meth:`refusal`."""

    def __init__(self, live: LiveSession) -> None:
        self.live = live
        self.rejected: RateLimitInfo | None = None
        self.refused_429 = False  # this turn's request was refused with a 429 (an assistant error rate_limit)

    def on_event(self, info: RateLimitInfo) -> None:
        live = self.live
        util = utilization(info)
        window = info.rate_limit_type or "unknown"
        if info.status == "rejected":
            self.rejected = info
        warn = info.status == "allowed_warning" and window not in live.record.limit_warned
        if util is None and not warn:
            return
        if warn:
            fields: dict[str, Any] = {"window": window, "utilization": util}
            if info.resets_at:
                fields["resetsAt"] = iso(info.resets_at)
            live.out.emit(R.LIMIT_WARNING, **fields)
        live.update(
            lambda r: r.with_changes(
                limit_utilization=r.limit_utilization if util is None else util,
                limit_window=r.limit_window if info.status == "allowed" else window,
                limit_warned=[*r.limit_warned, window] if warn and window not in r.limit_warned else r.limit_warned,
            )
        )

    def on_assistant_error(self, error: str | None) -> None:
        if error == "rate_limit":
            self.refused_429 = True

    def refusal(self, result: ResultMessage) -> tuple[str, float, float | None] | None:
        """The exhausted window of a turn that ended refused, its reset (epoch) and utilization; else None."""
        rejected, self.rejected = self.rejected, None
        refused, self.refused_429 = self.refused_429, False
        if not result.is_error:
            return None
        if rejected is not None and rejected.resets_at:
            return rejected.rate_limit_type or "unknown", float(rejected.resets_at), utilization(rejected)
        if refused or getattr(result, "api_error_status", None) == 429:
            return REFUSED_429_WINDOW, time.time() + REFUSED_429_SEC, None
        return None

    def park(self, window: str, resets_at: float, util: float | None) -> Outcome:
        """Record the session ``limited`` and arm its timer; the runner then ends (nothing runs while parked)."""
        live = self.live
        at = iso(resets_at)
        reason = f"usage limit ({window}) reached; resumes at {at}"
        record = live.update(lambda r: r.parked(window, at, util, reason))
        if record is None:
            why = f"usage limit ({window}) reached, and the session could not be parked: its record is not writable"
            return Outcome(Status.FAILED, why, EndCause.ERROR)
        if record.status is not Status.LIMITED:  # killed meanwhile: that verdict stays
            return Outcome(record.status, record.reason or "", record.end_cause or EndCause.KILLED)
        fields: dict[str, Any] = {"window": window, "resetsAt": at}
        if record.limit_utilization is not None:
            fields["utilization"] = record.limit_utilization
        try:
            with UserManager() as manager:
                # The timer's service that just resumed this runner may still be finishing: then the other name.
                retry = resume_timer.in_use(manager, record)
                resume_timer.arm(manager, resume_timer.spec(record, sys.executable, dict(os.environ), retry))
        except Exception as e:  # noqa: BLE001 - no timer: `clawunits recover --boot` or `unpark` resumes it
            fields["timerError"] = str(e)[:200]
        live.out.emit(R.LIMITED, **fields)
        return Outcome(Status.LIMITED, reason, EndCause.LIMITED)
