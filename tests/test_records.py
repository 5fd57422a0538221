"""The record stream: what the runner writes and what the reader puts back together (pure, no journald)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from clawunits import records as R
from clawunits.records import GapDetector, Record, RecordWriter, assemble, encode, parse_line

TS = "2026-11-21T23:55:42.201Z"


class FlushLog(io.StringIO):
    """A stream that remembers what had been written at each flush."""

    def __init__(self) -> None:
        super().__init__()
        self.flushed: list[str] = []

    def flush(self) -> None:
        super().flush()
        self.flushed.append(self.getvalue())


def lines_of(rec_lines: list[str]) -> list[tuple[str, str | None]]:
    return [(line, f"c{i}") for i, line in enumerate(rec_lines)]


def nasty_text(size: int = 100_000) -> str:
    """Text that stresses escaping: NUL, controls, quotes, backslashes, unicode, emoji, a lone surrogate."""
    unit = 'NUL\x00 tab\t nl\n "quoted" back\\slash \\u0000 ünïcødé 日本語 🦀🚀 \ud800 \x1b[31m '
    return (unit * (size // len(unit) + 1))[:size]


def test_writer_numbers_records_from_one_and_flushes_each_as_one_line() -> None:
    stream = FlushLog()
    out = RecordWriter(stream)
    assert out.last_seq == 0
    seqs = [out.emit(R.STARTED, sessionId="abc"), out.emit(R.TEXT, text="hi\nthere"), out.emit(R.EXIT)]
    assert seqs == [1, 2, 3]
    assert out.last_seq == 3
    # One flush per record, and each flush made exactly one more complete line visible.
    assert len(stream.flushed) == 3
    for n, snapshot in enumerate(stream.flushed, start=1):
        assert snapshot.endswith("\n")
        assert len(snapshot.splitlines()) == n
    written = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [w["seq"] for w in written] == [1, 2, 3]
    assert [w["type"] for w in written] == [R.STARTED, R.TEXT, R.EXIT]
    assert written[1]["text"] == "hi\nthere"
    assert all(w["ts"].endswith("Z") and w["ts"][:4].isdigit() for w in written)


def test_small_record_is_one_plain_json_line() -> None:
    [line] = encode(7, TS, R.TEXT, {"text": "hello"})
    assert json.loads(line) == {"seq": 7, "ts": TS, "type": R.TEXT, "text": "hello"}


@pytest.mark.parametrize("text", [nasty_text(), "x" * 100_000, "\\" * 100_000, "🦀" * 40_000, '"' * 60_000])
def test_big_record_is_cut_into_short_parts_and_assembles_back_identical(text: str) -> None:
    fields: dict[str, Any] = {"text": text, "extra": {"list": [1, 2.5, None, True], "k": "v"}}
    out = encode(42, TS, R.TEXT, fields)
    assert len(out) > 1
    for line in out:
        assert len(line.encode("utf-8")) < R.MAX_LINE
        assert "\n" not in line and "\x00" not in line
        part = json.loads(line)
        assert part["type"] == R.PART and part["seq"] == 42
    [rec] = assemble(lines_of(out))
    assert rec.to_json() == {"seq": 42, "ts": TS, "type": R.TEXT, **fields}
    assert rec.get("text") == text
    # The joined record carries the cursor of its last line, so catch-up continues after all its parts.
    assert rec.cursor == f"c{len(out) - 1}"


def test_writer_output_of_a_big_record_round_trips() -> None:
    stream = io.StringIO()
    out = RecordWriter(stream)
    out.emit(R.STARTED)
    out.emit(R.TOOL_RESULT, summary="big", content=nasty_text())
    out.emit(R.EXIT, status="completed")
    raw = stream.getvalue().splitlines()
    assert len(raw) > 3
    assert all(len(line.encode()) < R.MAX_LINE for line in raw)
    got = list(assemble((line, None) for line in raw))
    assert [r.seq for r in got] == [1, 2, 3]
    assert [r.type for r in got] == [R.STARTED, R.TOOL_RESULT, R.EXIT]
    assert got[1].get("content") == nasty_text()


@pytest.mark.parametrize("missing", ["first", "middle", "last"])
def test_missing_part_drops_the_record_and_reports_a_gap(missing: str) -> None:
    big = encode(2, TS, R.TEXT, {"text": "y" * 100_000})
    assert len(big) >= 3
    drop = {"first": 0, "middle": len(big) // 2, "last": len(big) - 1}[missing]
    stream = [
        *encode(1, TS, R.STARTED, {}),
        *(line for i, line in enumerate(big) if i != drop),
        *encode(3, TS, R.EXIT, {}),
    ]
    got = list(assemble(lines_of(stream)))
    assert [r.type for r in got] == [R.STARTED, R.GAP, R.EXIT]
    gap = got[1]
    assert gap.data == {"fromSeq": 2, "toSeq": 2, "missing": 1}
    assert not any(r.get("text") for r in got)


def test_seq_jump_is_a_gap_with_its_range() -> None:
    stream = [
        *encode(1, TS, R.STARTED, {}),
        *encode(2, TS, R.TEXT, {"text": "a"}),
        *encode(6, TS, R.EXIT, {}),
    ]
    got = list(assemble(lines_of(stream)))
    assert [(r.type, r.seq) for r in got] == [(R.STARTED, 1), (R.TEXT, 2), (R.GAP, None), (R.EXIT, 6)]
    assert got[2].data == {"fromSeq": 3, "toSeq": 5, "missing": 3}
    assert got[2].cursor == got[3].cursor


def test_gap_is_measured_from_a_given_last_seq() -> None:
    got = list(assemble(lines_of(encode(9, TS, R.TEXT, {"text": "later"})), last_seq=5))
    assert [r.type for r in got] == [R.GAP, R.TEXT]
    assert got[0].data == {"fromSeq": 6, "toSeq": 8, "missing": 3}
    assert next(assemble(lines_of(encode(6, TS, R.TEXT, {})), last_seq=5)).type == R.TEXT


def test_restart_at_seq_one_is_a_new_stream_not_a_gap() -> None:
    det = GapDetector()
    seqs = [1, 2, 3, 1, 2, 5]
    gaps = [det.check(Record(type=R.TEXT, seq=s, ts=TS)) for s in seqs]
    assert gaps[:5] == [None] * 5
    assert gaps[5] is not None and gaps[5].data == {"fromSeq": 3, "toSeq": 4, "missing": 2}
    # Records without a seq (log lines) neither cause nor hide gaps.
    det = GapDetector()
    assert det.check(Record(type=R.TEXT, seq=1, ts=TS)) is None
    assert det.check(Record(type=R.LOG, seq=None, ts="")) is None
    assert det.check(Record(type=R.TEXT, seq=2, ts=TS)) is None


@pytest.mark.parametrize(
    "line",
    [
        "Traceback (most recent call last):",
        '  File "runner.py", line 3, in <module>',
        "{not json",
        "[1, 2, 3]",
        '{"seq": "1", "type": "text"}',
        '{"seq": 1}',
        '"just a string"',
        "",
    ],
)
def test_non_record_lines_become_log_records(line: str) -> None:
    rec = parse_line(line, "cur")
    assert rec.type == R.LOG
    assert rec.seq is None
    assert rec.get("text") == line
    assert rec.cursor == "cur"


def test_log_lines_pass_through_assemble_between_records() -> None:
    stream = [*encode(1, TS, R.STARTED, {}), "Warning: something on stderr", *encode(2, TS, R.EXIT, {})]
    got = list(assemble(lines_of(stream)))
    assert [r.type for r in got] == [R.STARTED, R.LOG, R.EXIT]
    assert got[1].get("text") == "Warning: something on stderr"


def test_summarize_tool_input_prefers_the_telling_field() -> None:
    assert R.summarize_tool_input({"file_path": "/src/auth.ts", "content": "x" * 1000}) == "/src/auth.ts"
    assert R.summarize_tool_input({"command": "npm test", "description": "run tests"}) == "npm test"
    assert R.summarize_tool_input({"pattern": "TODO", "path": "src"}) == "src"
    assert R.summarize_tool_input({"pattern": "TODO\\(.*\\)"}) == "TODO\\(.*\\)"
    assert R.summarize_tool_input({"file_path": "/a.py", "command": "rm -rf /"}) == "/a.py"
    assert R.summarize_tool_input({"url": "https://example.com", "n": 3}) == "https://example.com"
    assert R.summarize_tool_input({"n": 3}) == ""
    assert R.summarize_tool_input({}) == ""
    assert R.summarize_tool_input(None) == ""


@pytest.mark.parametrize(("key", "limit"), [("file_path", 60), ("command", 80), ("pattern", 60)])
def test_summarize_tool_input_cuts_long_values_with_dots(key: str, limit: int) -> None:
    value = "/very/long/" + "segment/" * 50 + "end"
    summary = R.summarize_tool_input({key: value})
    assert len(summary) == limit
    assert summary.endswith("...")
    assert value.startswith(summary[:-3])
    # Exactly at the limit nothing is cut.
    assert R.summarize_tool_input({key: "a" * limit}) == "a" * limit


def test_summarize_tool_input_is_one_line() -> None:
    summary = R.summarize_tool_input({"command": "set -e\ncd /tmp\n\nmake   all"})
    assert summary == "set -e cd /tmp make all"


def test_summarize_tool_result_never_returns_the_whole_output() -> None:
    output = "\n".join(f"line {i}: " + "z" * 200 for i in range(10_000))
    summary = R.summarize_tool_result(output)
    assert "\n" not in summary
    assert summary.startswith("10000 lines: line 0: ")
    assert summary.endswith("...")
    assert len(summary) < 120
    assert "line 1:" not in summary


def test_summarize_tool_result_shapes() -> None:
    assert R.summarize_tool_result("ok") == "1 line: ok"
    assert R.summarize_tool_result("\n\n  \nfirst real\nsecond") == "5 lines: first real"
    assert R.summarize_tool_result(None) == "0 lines"
    assert R.summarize_tool_result("") == "0 lines"
    blocks = [
        {"type": "text", "text": "a\nb"},
        {"type": "image", "data": "x" * 10_000},
        {"type": "text", "text": "c"},
    ]
    assert R.summarize_tool_result(blocks) == "3 lines: a"


def test_stray_stderr_line_between_parts_does_not_lose_the_record() -> None:
    # stdout and stderr share one journal stream: a warning can land between two parts.
    big = encode(1, TS, R.TEXT, {"text": "z" * 60_000})
    stream = [big[0], "Warning: something on stderr", *big[1:]]
    got = list(assemble(lines_of(stream)))
    assert [r.type for r in got] == [R.LOG, R.TEXT]
    assert got[1].get("text") == "z" * 60_000


class _Sink:
    """A stream that breaks (EPIPE) while ``broken`` is set, as a closed journald stream does."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.broken = False

    def write(self, text: str) -> int:
        if self.broken:
            raise BrokenPipeError(32, "Broken pipe")
        self.lines.append(text)
        return len(text)

    def flush(self) -> None:
        pass


def test_a_broken_stream_is_reconnected_and_what_cannot_be_written_shows_as_a_gap() -> None:
    sink = _Sink()
    journald_back = [True]

    def reconnect(_error: OSError) -> bool:
        sink.broken = not journald_back[0]
        return journald_back[0]

    w = RecordWriter(sink, on_broken=reconnect)
    w.emit("text", text="one")
    sink.broken = True  # journald restarts; it is back at once: the record is written again on the new stream
    w.emit("text", text="two")
    journald_back[0] = False  # down for longer: records are lost, the session goes on
    sink.broken = True
    w.emit("text", text="three")
    journald_back[0] = True
    w.emit("text", text="four")
    recs = list(assemble((line.rstrip("\n"), None) for line in sink.lines))
    assert [(r.type, r.seq) for r in recs] == [("text", 1), ("text", 2), ("gap", None), ("text", 4)]
    assert recs[2].get("missing") == 1 and w.lost == 1
    # Without a way to reconnect, the error is raised as before.
    sink.broken = True
    with pytest.raises(BrokenPipeError):
        RecordWriter(sink).emit("text", text="x")
