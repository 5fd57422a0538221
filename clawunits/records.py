"""The session record stream: one JSON object per line on the runner's stdout.

One definition serves the runner (which writes), the journal reader (which joins and checks), the notifier
and the tests. Every record has ``seq`` (1, 2, 3 ... per runner process), ``ts`` (ISO 8601 UTC) and ``type``.

journald cuts lines at 48 KiB, so a record whose line would exceed ``MAX_LINE`` bytes is written as ``part``
records carrying slices of its JSON text under the same ``seq``; :class:`Joiner` puts them back together.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from clawunits.errors import NewerFormat

# The format version of the stream, carried as ``v`` by ``started`` and ``recovered`` (a runner's first records
# about its session), so every runner's stream says it once. Raised only for a change an older reader would
# misread: new record types and new fields are not one (readers ignore what they do not know). No ``v``: 1.
STREAM_VERSION = 1
VERSION_KEY = "v"

MAX_LINE = 32 * 1024
# A slice is JSON-escaped again inside its part record; worst case every char doubles, so stay under half.
PART_CHARS = 15_000

# Record types written by the runner.
STARTED = "started"
TEXT = "text"
TOOL_USE = "tool_use"
TOOL_RESULT = "tool_result"
TURN_END = "turn_end"
WAITING = "waiting"
MESSAGE_RECEIVED = "message_received"
INTERRUPTED = "interrupted"
PERMISSION_REQUEST = "permission_request"
PERMISSION_ANSWER = "permission_answer"
PLAN = "plan"
PLAN_ANSWER = "plan_answer"
WATCHDOG = "watchdog"
# The first record of a runner started by `clawunits recover`: the same session, resumed after a shutdown.
RECOVERED = "recovered"
# Usage limits: a window's warning (once per window and session), the session parked at an exhausted window
# (its runner ends; a timer resumes it), and the first record of the runner its timer started again.
LIMIT_WARNING = "limit_warning"
LIMITED = "limited"
RESUMED = "resumed"
ERROR = "error"
EXIT = "exit"
PART = "part"
# Produced by the reader, never written: a line that is not a record (stderr, tracebacks) and a seq gap.
LOG = "log"
GAP = "gap"

SUMMARY_CHARS = 120


def utc_now_iso() -> str:
    """The current time as ISO 8601 UTC with milliseconds, e.g. ``2026-11-21T23:55:42.201Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Record:
    """One record as read back: its fields, and the journal cursor of its last line (for catch-up)."""

    type: str
    seq: int | None
    ts: str
    data: dict[str, Any] = field(default_factory=dict)
    cursor: str | None = None

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "ts": self.ts, "type": self.type, **self.data}


# Environment variables whose values are secrets: never printed to the journal, never stored.
SECRET_NAME_RE = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH", re.I)
# Shorter values are too likely to occur by chance in ordinary text to be replaced everywhere.
MIN_SECRET_CHARS = 8
REDACTED = "[redacted]"


def is_secret_name(name: str) -> bool:
    """Does this environment variable hold a secret (an API key, a token, a password)?"""
    return bool(SECRET_NAME_RE.search(name))


@dataclass(frozen=True)
class Redactor:
    """Replaces secret values (API keys, tokens) wherever they appear in text Claude or a tool produced."""

    secrets: tuple[str, ...] = ()

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Redactor:
        values = {v for k, v in environ.items() if is_secret_name(k) and len(v) >= MIN_SECRET_CHARS}
        return cls(tuple(sorted(values, key=len, reverse=True)))  # longest first: no partial leftovers

    def text(self, value: str) -> str:
        for secret in self.secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value

    def value(self, value: Any) -> Any:
        """``value`` with every string in it redacted (dicts and lists walked)."""
        if not self.secrets:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value


class TextSink(Protocol):
    """Where records are written: ``sys.stdout``, or anything with ``write`` and ``flush``."""

    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...


class RecordWriter:
    """Writes records with increasing ``seq``, one flushed line each (the runner's side).

    ``on_broken`` is called when writing fails (journald restarted and closed the stream): it returns True
    once the stream can be written again, and the record is written once more; otherwise the record is lost
    (readers see a seq gap) and the session goes on. Without it, the error is raised.
    """

    def __init__(
        self,
        stream: TextSink | None = None,
        redactor: Redactor | None = None,
        on_broken: Callable[[OSError], bool] | None = None,
    ) -> None:
        self._stream: TextSink = stream or sys.stdout
        self._seq = 0
        self.redactor = redactor or Redactor()
        self.on_broken = on_broken
        self.lost = 0  # records that could not be written

    @property
    def last_seq(self) -> int:
        return self._seq

    def emit(self, type_: str, **fields: Any) -> int:
        """Write one record and return its seq."""
        self._seq += 1
        lines = encode(self._seq, utc_now_iso(), type_, self.redactor.value(fields))
        try:
            self._write(lines)
        except OSError as e:
            if self.on_broken is None:
                raise
            try:
                # A record cut into parts may have reached the old stream in part: readers restart at part 0.
                if self.on_broken(e):
                    self._write(lines)
                    return self._seq
            except OSError:
                pass
            self.lost += 1
        return self._seq

    def _write(self, lines: list[str]) -> None:
        for line in lines:
            self._stream.write(line + "\n")
        self._stream.flush()


def encode(seq: int, ts: str, type_: str, fields: dict[str, Any]) -> list[str]:
    """Serialize one record to one line, or to ``part`` lines when it would exceed ``MAX_LINE``."""
    # ensure_ascii keeps every byte printable ASCII: NUL bytes or stray surrogates in tool output cannot
    # corrupt the journal entry, and characters equal bytes when measuring the line.
    text = json.dumps({"seq": seq, "ts": ts, "type": type_, **fields}, ensure_ascii=True, separators=(",", ":"))
    if len(text) <= MAX_LINE:
        return [text]
    slices = [text[i : i + PART_CHARS] for i in range(0, len(text), PART_CHARS)]
    return [
        json.dumps(
            {"seq": seq, "ts": ts, "type": PART, "part": i, "parts": len(slices), "data": chunk},
            ensure_ascii=True,
            separators=(",", ":"),
        )
        for i, chunk in enumerate(slices)
    ]


def parse_line(line: str, cursor: str | None = None) -> Record:
    """Parse one journal line; anything that is not a record becomes a ``log`` record."""
    try:
        obj = json.loads(line)
    except ValueError:
        obj = None
    if not isinstance(obj, dict) or not isinstance(obj.get("seq"), int) or not isinstance(obj.get("type"), str):
        return Record(type=LOG, seq=None, ts="", data={"text": line}, cursor=cursor)
    seq, ts, type_ = obj.pop("seq"), obj.pop("ts", ""), obj.pop("type")
    return Record(type=type_, seq=seq, ts=ts, data=obj, cursor=cursor)


class Joiner:
    """Reassembles ``part`` records into the record they were cut from.

    Parts of one record are consecutive lines of one runner, so a single pending buffer is enough; a part
    sequence broken by a lost line is dropped and surfaces as a seq gap instead.
    """

    def __init__(self) -> None:
        self._seq: int | None = None
        self._chunks: list[str] = []

    def feed(self, rec: Record) -> Record | None:
        if rec.type == LOG:
            # stderr shares the stream: a stray line between two parts must not lose the record.
            return rec
        if rec.type != PART:
            self._reset()
            return rec
        part, parts = rec.get("part"), rec.get("parts")
        if part == 0 or rec.seq != self._seq:
            self._seq, self._chunks = rec.seq, []
        if part != len(self._chunks):
            self._reset()
            return None
        self._chunks.append(str(rec.get("data", "")))
        if len(self._chunks) < parts:
            return None
        whole = parse_line("".join(self._chunks), rec.cursor)
        self._reset()
        return whole if whole.type != LOG else None

    def _reset(self) -> None:
        self._seq, self._chunks = None, []


class GapDetector:
    """Reports seq numbers missing between consecutive records (journald drops lines silently).

    A runner restart begins again at seq 1, which is a new stream, not a gap.
    """

    def __init__(self, last_seq: int | None = None) -> None:
        self._last = last_seq

    def check(self, rec: Record) -> Record | None:
        """Return a ``gap`` record if ``rec`` does not follow the previous record, else None."""
        if rec.seq is None:
            return None
        last, self._last = self._last, rec.seq
        if last is None or rec.seq == 1 or rec.seq == last + 1:
            return None
        if rec.seq <= last:
            return None
        return Record(
            type=GAP,
            seq=None,
            ts=rec.ts,
            data={"fromSeq": last + 1, "toSeq": rec.seq - 1, "missing": rec.seq - 1 - last},
            cursor=rec.cursor,
        )


def is_newer(rec: Record) -> bool:
    """Was ``rec`` written in a newer stream format than this reader's (a runner of a newer clawunits)?"""
    v = rec.get(VERSION_KEY)
    return isinstance(v, int) and v > STREAM_VERSION


def check_version(rec: Record, source: str) -> None:
    """Refuse a record of a newer stream format with one clear error, rather than misread what follows it."""
    if is_newer(rec):
        raise NewerFormat(source, f"record stream v{rec.get(VERSION_KEY)}", f"v{STREAM_VERSION}")


def assemble(
    lines: Iterable[tuple[str, str | None]], last_seq: int | None = None, source: str = "this session"
) -> Iterator[Record]:
    """Turn raw ``(line, cursor)`` pairs into whole records, with ``gap`` records where seq jumps; a stream of a
    newer format raises :class:`~clawunits.errors.NewerFormat` naming ``source``."""
    joiner, gaps = Joiner(), GapDetector(last_seq)
    for line, cursor in lines:
        rec = joiner.feed(parse_line(line, cursor))
        if rec is None:
            continue
        check_version(rec, source)
        gap = gaps.check(rec)
        if gap is not None:
            yield gap
        yield rec


def shorten(text: str, limit: int = SUMMARY_CHARS) -> str:
    """Cut ``text`` to ``limit`` characters on one line, marking the cut with ``...``."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: max(0, limit - 3)] + "..."


# The seed's tool summary: the most telling input field, each with its own length.
_SUMMARY_FIELDS = (("file_path", 60), ("path", 60), ("command", 80), ("pattern", 60), ("glob", 60))


def summarize_tool_input(tool_input: Any) -> str:
    """A one-line summary of a tool call's input (file path, command, pattern, or first string value)."""
    if not isinstance(tool_input, dict):
        return shorten(str(tool_input), 60) if tool_input else ""
    for key, limit in _SUMMARY_FIELDS:
        value = tool_input.get(key)
        if isinstance(value, str) and value.strip():
            return shorten(value, limit)
    for value in tool_input.values():
        if isinstance(value, str) and value.strip():
            return shorten(value, 60)
    return ""


def summarize_tool_result(content: Any) -> str:
    """A one-line summary of a tool result: its size and first line, never the whole output."""
    if isinstance(content, list):
        parts = [c.get("text", "") for c in content if isinstance(c, dict) and c.get("type") == "text"]
        text = "\n".join(parts)
    elif content is None:
        text = ""
    else:
        text = str(content)
    lines = text.splitlines()
    first = next((ln for ln in lines if ln.strip()), "")
    size = f"{len(lines)} line{'s' if len(lines) != 1 else ''}"
    return f"{size}: {shorten(first, 80)}" if first else size
