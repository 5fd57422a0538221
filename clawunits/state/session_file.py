"""The stored form of a session record (one TOML file each): what is written, and what is read back, checked.

A file of a newer schema is refused (never read, never rewritten); a damaged one (wrong type, unknown status,
bad timestamp) raises ValueError naming the field, so that the store skips it instead of a listing crashing later.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any

from clawunits.errors import NewerFormat
from clawunits.state.models import (
    SCHEMA_VERSION,
    EndCause,
    SessionRecord,
    Status,
    WaitingFor,
    WorktreeInfo,
    parse_ts,
)


def to_toml(record: SessionRecord) -> dict[str, Any]:
    """The stored form: None values are left out (TOML has no null)."""
    data = asdict(record)
    data["status"] = record.status.value
    for key in ("waiting_for", "end_cause"):
        if data[key] is not None:
            data[key] = str(data[key])
    if data["worktree"] is not None:
        data["worktree"] = {k: v for k, v in data["worktree"].items() if v is not None}
    return {k: v for k, v in data.items() if v is not None}


def from_toml(data: dict[str, Any]) -> SessionRecord:
    """The record of a stored file; one of a newer schema raises NewerFormat (never read, never rewritten)."""
    schema = data.get("schema", 1)
    if isinstance(schema, int) and schema > SCHEMA_VERSION:
        raise NewerFormat(f"session {data.get('id', '?')}", f"schema {schema}", str(SCHEMA_VERSION))
    known = {f.name for f in fields(SessionRecord)}
    values = {k: v for k, v in data.items() if k in known}
    values["schema"] = SCHEMA_VERSION  # an older file is read as this schema and written back as one
    values["status"] = Status(values.get("status", Status.STARTING))
    if values.get("waiting_for") is not None:
        values["waiting_for"] = WaitingFor(values["waiting_for"])
    if values.get("end_cause") is not None:
        values["end_cause"] = EndCause(values["end_cause"])
    if isinstance(values.get("worktree"), dict):
        known_wt = {f.name for f in fields(WorktreeInfo)}
        wt = {k: v for k, v in values["worktree"].items() if k in known_wt}
        check_types(WorktreeInfo, wt)
        values["worktree"] = WorktreeInfo(**wt)
    check_types(SessionRecord, values)
    return SessionRecord(**values)


# Fields holding a timestamp: a damaged one would break every listing later (durations, sorting).
TIMESTAMPS = (
    "created_at",
    "started_at",
    "completed_at",
    "last_activity_at",
    "interrupted_at",
    "recovered_at",
    "limit_resets_at",
    "limited_at",
    "limit_resumed_at",
)


def check_types(cls: type, values: dict[str, Any]) -> None:
    """Refuse a stored value of the wrong type (a damaged or hand-edited file) with a ValueError naming the field,
    so that the store skips the file instead of a listing crashing on it later."""
    for f in fields(cls):
        if f.name not in values:
            continue
        value = values[f.name]
        if not any(_is(kind, value) for kind in str(f.type).split(" | ")):
            raise ValueError(f"field {f.name!r} must be {f.type}, not {type(value).__name__} {value!r:.40}")
        if f.name in TIMESTAMPS and value is not None:
            try:
                parse_ts(value)
            except ValueError:
                raise ValueError(f"field {f.name!r} is not a timestamp: {value!r:.40}") from None


def _is(kind: str, value: Any) -> bool:
    """Does ``value`` fit the annotation ``kind`` (one member of a union, as the dataclass declares it)?"""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    checks = {
        "None": value is None,
        "str": isinstance(value, str),
        "bool": isinstance(value, bool),
        "int": number and isinstance(value, int),
        "float": number,
        "list[str]": isinstance(value, list) and all(isinstance(v, str) for v in value),
        "dict[str, str]": isinstance(value, dict) and all(isinstance(v, str) for v in value.values()),
        "WorktreeInfo": isinstance(value, WorktreeInfo),
    }
    # The enums are converted (and so checked) before this.
    return checks.get(kind, True)
