"""Usage statistics: computed from session records, plus an archive of sessions ``gc`` deleted."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from clawunits.records import shorten
from clawunits.service import disk
from clawunits.state.models import SessionRecord, Status
from clawunits.state.store import write_atomically

ARCHIVE = "stats-archive.json"


def empty_archive() -> dict[str, Any]:
    return {
        "launched": 0,
        "byStatus": {},
        "costUsd": 0.0,
        "costPerDay": {},
        "durationMsSum": 0,
        "durationCount": 0,
        "mostExpensive": None,
    }


def load_stats_archive(root: Path) -> dict[str, Any]:
    try:
        data = json.loads((root / ARCHIVE).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return empty_archive()
    return {**empty_archive(), **data}


def archive_sessions(root: Path, records: list[SessionRecord]) -> None:
    """Fold sessions about to be deleted into the archive, so totals never shrink."""
    a = load_stats_archive(root)
    for r in records:
        a["launched"] += 1
        a["byStatus"][r.status.value] = a["byStatus"].get(r.status.value, 0) + 1
        a["costUsd"] = round(a["costUsd"] + r.cost_usd, 6)
        day = (r.completed_at or r.created_at)[:10]
        a["costPerDay"][day] = round(a["costPerDay"].get(day, 0.0) + r.cost_usd, 6)
        if r.status.is_terminal and r.duration_ms is not None:
            a["durationMsSum"] += r.duration_ms
            a["durationCount"] += 1
        top = a["mostExpensive"]
        if r.cost_usd > 0 and (top is None or r.cost_usd > top["costUsd"]):
            a["mostExpensive"] = {"id": r.id, "name": r.name, "costUsd": r.cost_usd, "prompt": shorten(r.prompt, 80)}
    write_atomically(root / ARCHIVE, json.dumps(a, indent=1).encode())


def stats_of(records: list[SessionRecord], archive: dict[str, Any]) -> dict[str, Any]:
    by_status = Counter(r.status.value for r in records)
    for status, n in archive["byStatus"].items():
        by_status[status] += n
    per_day: dict[str, float] = dict(archive["costPerDay"])
    for r in records:
        day = (r.completed_at or r.created_at)[:10]
        per_day[day] = round(per_day.get(day, 0.0) + r.cost_usd, 6)
    durations = [r.duration_ms for r in records if r.status.is_terminal and r.duration_ms is not None]
    total_ms, count = sum(durations) + archive["durationMsSum"], len(durations) + archive["durationCount"]
    candidates: list[dict[str, Any]] = [
        {"id": r.id, "name": r.name, "costUsd": r.cost_usd, "prompt": shorten(r.prompt, 80)}
        for r in records
        if r.cost_usd > 0
    ]
    if archive["mostExpensive"]:
        candidates.append(archive["mostExpensive"])
    return {
        "totalLaunched": len(records) + archive["launched"],
        "sessionsByStatus": {s.value: by_status.get(s.value, 0) for s in Status},
        "totalCostUsd": round(sum(r.cost_usd for r in records) + archive["costUsd"], 6),
        "costPerDay": dict(sorted(per_day.items())),
        "averageDurationMs": int(total_ms / count) if count else None,
        "mostExpensive": max(candidates, key=lambda c: c["costUsd"], default=None),
        "launchQueue": _launch_queue(records),
        "parked": [parked_entry(r) for r in records if r.status is Status.LIMITED],
    }


def parked_entry(r: SessionRecord) -> dict[str, Any]:
    """A session parked at a usage limit: which window, when it resumes, the last utilization."""
    return {
        "id": r.id,
        "name": r.name,
        "window": r.limit_window,
        "resetsAt": r.limit_resets_at,
        "utilization": r.limit_utilization,
    }


def worktree_usage(records: list[SessionRecord]) -> list[tuple[SessionRecord, int]]:
    """The sessions' worktrees that exist, with the bytes each takes on disk, largest first."""
    found: list[tuple[SessionRecord, int]] = []
    seen: set[str] = set()
    for r in records:
        # A resumed session shares its parent's worktree: counted once.
        if r.worktree is None or r.worktree.removed or r.worktree.path in seen:
            continue
        seen.add(r.worktree.path)
        size = disk.usage(r.worktree.path)
        if size is not None:
            found.append((r, size))
    return sorted(found, key=lambda f: -f[1])


def worktree_usage_json(records: list[SessionRecord]) -> dict[str, Any]:
    """The sessions' worktrees on disk: their total, and each (largest first)."""
    usage = worktree_usage(records)
    return {
        "count": len(usage),
        "diskBytes": sum(size for _, size in usage),
        "sessions": [
            {"id": r.id, "name": r.name, "status": r.status.value, "path": r.worktree.path, "diskBytes": size}
            for r, size in usage
            if r.worktree is not None
        ],
    }


def _launch_queue(records: list[SessionRecord]) -> list[dict[str, Any]]:
    """The queued sessions in the order they start, with their places."""
    from clawunits.service.queue import ordered

    return [
        {"id": r.id, "name": r.name, "queuePosition": i, "priority": r.queue_priority, "queuedAt": r.created_at}
        for i, r in enumerate(ordered(records), start=1)
    ]
