"""Garbage collection (``clawunits gc``, run every 5 minutes by ``clawunits-gc.timer``).

Sessions finished more than an hour ago leave the default listing and their units are reset (their journal
stays); their worktrees (``launch --worktree``) are removed if merged into their base and clean, else kept.
Of the finished sessions, the newest ``maxPersistedSessions`` stay resumable; older ones are deleted with
their inbox, after their numbers went into the statistics archive. A session whose worktree was kept is not
deleted: its record is how the unmerged work is found.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from clawunits.errors import ClawunitsError, SystemdError
from clawunits.service.api import Service
from clawunits.service.foreground import Foreground
from clawunits.service.stats import archive_sessions
from clawunits.state.models import SessionRecord, Status, parse_ts
from clawunits.state.store import sweep_temp_files

ARCHIVE_AFTER_SEC = 3600.0


@dataclass
class GcReport:
    archived: list[str] = field(default_factory=list)
    units_reset: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    temp_files_removed: list[str] = field(default_factory=list)
    worktrees_removed: list[str] = field(default_factory=list)
    # Session id → why its worktree stays (unmerged commits, uncommitted changes, ...).
    worktrees_kept: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "archived": self.archived,
            "unitsReset": self.units_reset,
            "deleted": self.deleted,
            "tempFilesRemoved": self.temp_files_removed,
            "worktreesRemoved": self.worktrees_removed,
            "worktreesKept": self.worktrees_kept,
        }


def collect(service: Service, archive_after_sec: float = ARCHIVE_AFTER_SEC, now: datetime | None = None) -> GcReport:
    now = now or datetime.now(UTC)
    report = GcReport()
    # An interrupted session is not finished: it waits for `clawunits recover`.
    finished = [
        r for r in service.sessions(include_archived=True) if not r.is_open and r.status is not Status.INTERRUPTED
    ]
    for r in finished:
        age = (now - parse_ts(r.completed_at or r.created_at)).total_seconds()
        if age < archive_after_sec:
            continue
        if _reset_unit(service, r):
            report.units_reset.append(r.unit)
        if not r.archived:
            service.store.update(r.id, lambda rec: rec.with_changes(archived=True))
            report.archived.append(r.id)
        _collect_worktree(service, r, report)
    keep = service.settings.maxPersistedSessions
    finished.sort(key=lambda r: r.completed_at or r.created_at, reverse=True)
    doomed = [r for r in finished[keep:] if not _has_worktree(service, r)]
    if doomed:
        archive_sessions(service.store.root, doomed)
        for r in doomed:
            _delete(service, r)
            report.deleted.append(r.id)
    report.temp_files_removed = [str(p) for p in sweep_temp_files(service.store.root)]
    return report


def _collect_worktree(service: Service, r: SessionRecord, report: GcReport) -> None:
    current = service.store.load(r.id)
    if current.worktree is None or current.worktree.removed:
        return
    try:
        removal = service.remove_worktree(current)
    except ClawunitsError as e:
        report.worktrees_kept[r.id] = e.message
        return
    if removal.removed:
        report.worktrees_removed.append(r.id)
    else:
        report.worktrees_kept[r.id] = removal.reason


def _has_worktree(service: Service, r: SessionRecord) -> bool:
    info = service.store.load(r.id).worktree
    return info is not None and not info.removed


def _reset_unit(service: Service, r: SessionRecord) -> bool:
    try:
        state = service.manager.state(r.unit)
        if state is None:
            return False
        service.manager.reset(r.unit)
        return True
    except SystemdError:
        return False


def _delete(service: Service, r: SessionRecord) -> None:
    _reset_unit(service, r)
    with service.store.lock(r.id):
        service.store.path_of(r.id).unlink(missing_ok=True)
    shutil.rmtree(service.store.root / "inbox" / r.id, ignore_errors=True)
    (service.store.locks_dir / f"{r.id}.lock").unlink(missing_ok=True)
    Foreground(service.store).forget(r.id)
