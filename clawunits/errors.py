"""The library's exceptions: a user-facing message, an optional hint, and the CLI exit code."""

from __future__ import annotations

from typing import Any, ClassVar


class ClawunitsError(Exception):
    """Base of every error the library reports to a user; the CLI prints it as one line."""

    exit_code: ClassVar[int] = 1
    code: ClassVar[str] = "error"

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.message, "code": self.code}
        if self.hint:
            out["hint"] = self.hint
        return out


class InvalidInput(ClawunitsError):
    """A parameter is malformed (bad name, missing workdir, negative budget ...)."""

    exit_code = 2
    code = "invalid-input"


class NotFound(ClawunitsError):
    """A session reference matches nothing."""

    exit_code = 3
    code = "not-found"


class Ambiguous(ClawunitsError):
    """A session reference matches more than one session."""

    exit_code = 3
    code = "ambiguous"


class StateError(ClawunitsError):
    """The session is in a state that does not allow the operation (e.g. killing a finished session)."""

    exit_code = 4
    code = "state"


class Forbidden(ClawunitsError):
    """The caller may not act on this session (another agent's)."""

    exit_code = 9
    code = "forbidden"


class NotAuthorized(Forbidden):
    """The caller (a chat sender, or the person an agent acts for) may not do this (docs/SAFETY.md)."""

    exit_code = 12
    code = "not-authorized"


class LimitReached(ClawunitsError):
    """A configured limit refuses the operation (maxSessions ...)."""

    exit_code = 5
    code = "limit"


class SystemdError(ClawunitsError):
    """The user manager could not be reached or refused an operation."""

    exit_code = 6
    code = "systemd"


class JournalError(ClawunitsError):
    """journald could not be read."""

    exit_code = 6
    code = "journal"


class StoreError(ClawunitsError):
    """The state directory could not be read or written."""

    exit_code = 7
    code = "store"


class NewerFormat(ClawunitsError):
    """A session file or record stream was written by a newer clawunits than this one reads."""

    exit_code = 11
    code = "newer-format"

    def __init__(self, what: str, found: str, reads: str) -> None:
        message = f"{what} was written by a newer clawunits: {found}, this one reads {reads}"
        super().__init__(message, hint="upgrade clawunits")


class GitError(ClawunitsError):
    """git is missing or failed on a repository clawunits manages a worktree in."""

    exit_code = 10
    code = "git"


class MergeConflict(GitError):
    """Merging a session's branch would conflict; nothing was changed. ``files`` are the conflicting paths."""

    code = "merge-conflict"

    def __init__(self, message: str, hint: str | None = None, files: list[str] | None = None) -> None:
        super().__init__(message, hint)
        self.files = files or []

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "files": self.files}


class PullRequestUnavailable(ClawunitsError):
    """``clawunits pr`` cannot open a pull request here (no ``gh``, not logged in, no remote)."""

    exit_code = 13
    code = "pr-unavailable"


class CommandError(ClawunitsError):
    """An external command could not be started (see :mod:`clawunits.proc`); the subclasses say what else
    went wrong. The message names the command; ``stderr`` holds what it wrote there."""

    code = "command"

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        argv: list[str] | None = None,
        returncode: int | None = None,
        stderr: str = "",
        reason: str = "",
    ) -> None:
        super().__init__(message, hint)
        self.argv = argv or []
        self.returncode = returncode
        self.stderr = stderr
        self.reason = reason  # why it could not start (the OS's words), or ""


class CommandNotFound(CommandError):
    """The executable does not exist (or is not on PATH)."""

    code = "command-not-found"


class CommandFailed(CommandError):
    """The command exited with a non-zero status."""

    code = "command-failed"


class CommandTimedOut(CommandError):
    """The command ran longer than its timeout and was killed."""

    code = "command-timeout"


class BootstrapError(SystemdError):
    """The user manager or journald is not usable and could not be started; ``hint`` says how to fix it."""

    code = "bootstrap"
