"""Running external commands: the one way clawunits starts a subprocess.

Argv only (never a shell), stdin ``/dev/null``, output decoded as text with undecodable bytes replaced, and
every failure turned into a :class:`~clawunits.errors.CommandError` that names the command and carries the
end of its stderr: :class:`~clawunits.errors.CommandNotFound` (no such executable),
:class:`~clawunits.errors.CommandFailed` (non-zero exit, with ``check``) and
:class:`~clawunits.errors.CommandTimedOut`. Callers that tolerate a failure catch the error; callers with
their own words for it (``git is not installed``) catch it and raise their own error.

:func:`run` waits for the command, :func:`stream` hands over its output line by line while it runs,
:func:`run_async` and :func:`stream_async` are the same for the notifier's event loop.
"""

from __future__ import annotations

import contextlib
import errno
import shlex
import subprocess
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import IO, Any

from clawunits.errors import CommandError, CommandFailed, CommandNotFound, CommandTimedOut

Completed = subprocess.CompletedProcess[str]

# How much of a command's stderr an error message carries (its end: where the reason usually is).
STDERR_TAIL_CHARS = 500
COMMAND_SHOWN_CHARS = 200


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
    errors: str = "replace",
    as_user: tuple[int, int] | None = None,
    new_session: bool = False,
    cwd: str | None = None,
) -> Completed:
    """Run ``argv`` to its end and return its output.

    ``env`` replaces the environment (None: inherit it); ``as_user`` is a (uid, gid) to run as, without
    supplementary groups (needs root); ``new_session`` detaches it from our terminal and process group.
    """
    argv = list(argv)
    identity: dict[str, Any] = {}
    if as_user is not None:
        identity = {"user": as_user[0], "group": as_user[1], "extra_groups": []}
    try:
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors=errors,
            env=env,
            timeout=timeout,
            start_new_session=new_session,
            cwd=cwd,
            check=False,
            **identity,
        )
    except subprocess.TimeoutExpired as e:
        raise timed_out(argv, timeout) from e
    except OSError as e:
        raise not_started(argv, e) from e
    if check and done.returncode != 0:
        raise failed(argv, done.returncode, done.stderr)
    return done


@contextlib.contextmanager
def stream(argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> Iterator[IO[str]]:
    """Start ``argv`` and yield its stdout to read lines from while it runs (its stderr goes to ours);
    it is terminated when the block ends."""
    argv = list(argv)
    try:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True, errors="replace", env=env
        )
    except OSError as e:
        raise not_started(argv, e) from e
    assert proc.stdout is not None
    try:
        yield proc.stdout
    finally:
        proc.terminate()
        proc.wait()
        proc.stdout.close()


async def run_async(
    argv: Sequence[str],
    *,
    check: bool = True,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
) -> Completed:
    """:func:`run` for an event loop: the command is killed (and reaped) when ``timeout`` passes."""
    # Imported here, not at the top: the CLI imports this module and must not pay for asyncio at start-up
    # (docs/PERFORMANCE.md); inside a coroutine asyncio is loaded already.
    import asyncio

    argv = list(argv)
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
    except OSError as e:
        raise not_started(argv, e) from e
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise timed_out(argv, timeout) from None
    returncode = proc.returncode if proc.returncode is not None else -1
    done = subprocess.CompletedProcess(argv, returncode, out.decode(errors="replace"), err.decode(errors="replace"))
    if check and returncode != 0:
        raise failed(argv, returncode, done.stderr)
    return done


@contextlib.asynccontextmanager
async def stream_async(argv: Sequence[str], *, limit: int) -> AsyncIterator[AsyncIterator[str]]:
    """:func:`stream` for an event loop: yields the lines of stdout (at most ``limit`` bytes each; a longer
    one raises ValueError) until the command ends; it is terminated when the block ends."""
    import asyncio  # not at the top: see run_async

    argv = list(argv)
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, limit=limit
        )
    except OSError as e:
        raise not_started(argv, e) from e
    assert proc.stdout is not None
    reader = proc.stdout

    async def lines() -> AsyncIterator[str]:
        while line := await reader.readline():
            yield line.decode(errors="replace")

    try:
        yield lines()
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()


# -- the errors ----------------------------------------------------------------------------------------------


def shown(argv: Sequence[str]) -> str:
    """The command as a person would type it, cut short when long."""
    text = shlex.join(argv)
    return text if len(text) <= COMMAND_SHOWN_CHARS else text[: COMMAND_SHOWN_CHARS - 1] + "…"


def not_started(argv: list[str], e: OSError) -> CommandError:
    reason = e.strerror or str(e)
    if e.errno == errno.ENOENT:
        return CommandNotFound(
            f"{argv[0]} not found", hint=f"install {argv[0]} or put it on PATH", argv=argv, reason=reason
        )
    return CommandError(f"cannot run {argv[0]}: {reason}", argv=argv, reason=reason)


def failed(argv: list[str], returncode: int, stderr: str) -> CommandFailed:
    tail = stderr.strip()[-STDERR_TAIL_CHARS:]
    message = f"`{shown(argv)}` failed (exit {returncode})" + (f": {tail}" if tail else "")
    return CommandFailed(message, argv=argv, returncode=returncode, stderr=stderr)


def timed_out(argv: list[str], timeout: float | None) -> CommandTimedOut:
    return CommandTimedOut(f"`{shown(argv)}` timed out after {timeout:g}s and was killed", argv=argv)
