#!/usr/bin/env python3
"""Run the clawunits CLI and freeze it (SIGSTOP) just before its N-th write step, so that a test's SIGKILL
provably lands in the middle of a write rather than somewhere in the interpreter's start-up.

Usage: ``write_steps.py N ARG...`` runs ``clawunits ARG...``. A write step is a call of one of the file
operations below made while code of ``clawunits/state/`` is on the stack (so a plain ``Path.write_bytes``
that replaced the atomic write would be stepped through too). Before freezing, it prints
``write step N: <call> in <function chain>`` to stderr. With fewer than N steps the command runs to its end.
"""

from __future__ import annotations

import io
import os
import runpy
import signal
import sys
from types import FrameType, ModuleType
from typing import Any

# The calls that change files or make them durable: between any two of them a kill leaves a partial state.
STEP_CALLS = frozenset({"open", "write", "flush", "fsync", "fchmod", "chmod", "replace", "rename", "unlink", "close"})
STATE_CODE = f"{os.sep}clawunits{os.sep}state{os.sep}"


def _is_file_operation(call: Any) -> bool:
    """A function of ``os`` or ``io``, or a method of a file (not, say, ``str.replace``)."""
    if getattr(call, "__name__", "") not in STEP_CALLS:
        return False
    owner = getattr(call, "__self__", None)
    return (isinstance(owner, ModuleType) and owner.__name__ in ("posix", "_io")) or isinstance(owner, io.IOBase)


def _state_chain(frame: FrameType | None) -> list[str]:
    """The functions of clawunits/state/ on the stack, innermost first (empty: not a state write)."""
    chain = []
    while frame is not None:
        if STATE_CODE in frame.f_code.co_filename:
            chain.append(frame.f_code.co_name)
        frame = frame.f_back
    return chain


def main() -> None:
    stop_at, args = int(sys.argv[1]), sys.argv[2:]
    count = 0

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        nonlocal count
        if event != "c_call" or not _is_file_operation(arg):
            return
        chain = _state_chain(frame)
        if not chain:
            return
        count += 1
        if count == stop_at:
            sys.stderr.write(f"write step {count}: {arg.__name__} in {' < '.join(chain)}\n")
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGSTOP)

    sys.argv = ["clawunits", *args]
    sys.setprofile(profile)
    runpy.run_module("clawunits", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
