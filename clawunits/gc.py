"""Garbage collection (``clawunits gc``, run every 5 minutes by ``clawunits-gc.timer``).

Sessions finished more than an hour ago leave the default listing and their units are reset (their journal
stays). Of the finished sessions, the newest ``maxPersistedSessions`` stay resumable; older ones are deleted
with their inbox, after their numbers went into the statistics archive.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime

from clawunits.api import Service
from clawunits.errors import SystemdError
from clawunits.foreground import Foreground
from clawunits.models import SessionRecord, Status, parse_ts
from clawunits.stats import archive_sessions
from clawunits.store import sweep_temp_files

ARCHIVE_AFTER_SEC = 3600.0


@dataclass
class GcReport:
    archived: list[str] = field(default_factory=list)
    units_reset: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    temp_files_removed: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, list[str]]:
        return {
            "archived": self.archived,
            "unitsReset": self.units_reset,
            "deleted": self.deleted,
            "tempFilesRemoved": self.temp_files_removed,
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
    keep = service.settings.maxPersistedSessions
    finished.sort(key=lambda r: r.completed_at or r.created_at, reverse=True)
    doomed = finished[keep:]
    if doomed:
        archive_sessions(service.store.root, doomed)
        for r in doomed:
            _delete(service, r)
            report.deleted.append(r.id)
    report.temp_files_removed = [str(p) for p in sweep_temp_files(service.store.root)]
    return report


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
