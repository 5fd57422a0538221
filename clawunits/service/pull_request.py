"""``pr``: push a worktree session's branch and open a pull request with GitHub's ``gh``.

The title is the session's prompt (its first line), the body the prompt, the session's final summary and its
facts. Without ``gh``, without a login, or without a remote it fails with one line and the fix; a pull request
already open for the branch is reported, not opened twice.
"""

from __future__ import annotations

import re
import shutil

from clawunits import proc
from clawunits.errors import CommandError, PullRequestUnavailable, StateError
from clawunits.records import shorten
from clawunits.service import git_merge, sessions
from clawunits.service.authority import Action
from clawunits.service.context import Context
from clawunits.service.merge import check_finished, leftover_message, session_worktree_of
from clawunits.service.results import PullRequestResult
from clawunits.state.models import SessionRecord, WorktreeInfo

GH_TIMEOUT_SEC = 120.0
TITLE_CHARS = 72
URL_RE = re.compile(r"https?://\S+")


def pull_request(
    ctx: Context, ref: str, base: str | None = None, remote: str | None = None, draft: bool = False,
    agent: str | None = None,
) -> PullRequestResult:  # fmt: skip
    """Push the session's branch (its uncommitted work committed first) to ``remote`` and open a pull request
    into ``base`` (default: the branch it was cut from)."""
    record = sessions.get(ctx, ref, agent)
    ctx.authorize(Action.PULL_REQUEST, record)
    info = session_worktree_of(record)
    check_finished(record)
    gh = _gh()
    where = _remote(info, remote)
    with ctx.store.lock("worktrees"):
        src = git_merge.source(info, leftover_message(record))
        git_merge.take_snapshot(info, src)
    git_merge.push(info.repo, where, info.branch)
    into = base or info.base
    argv = [gh, "pr", "create", "--head", info.branch, "--base", into, "--title", _title(record)]
    argv += ["--body", _body(record, info), *(["--draft"] if draft else [])]
    done = _run_gh(argv, info.repo, check=False)
    if done.returncode == 0:
        return PullRequestResult(ctx.store.load(record.id), where, into, _url(done.stdout), False, src.uncommitted)
    if "already exists" in done.stderr and URL_RE.search(done.stderr):
        return PullRequestResult(ctx.store.load(record.id), where, into, _url(done.stderr), True, src.uncommitted)
    raise StateError(
        f"gh pr create failed: {_last_line(done.stderr) or f'exit {done.returncode}'} (the branch was pushed)",
        hint=f"run `gh pr create --head {info.branch} --base {into}` in {info.repo} to see why",
    )


def _gh() -> str:
    """``gh`` on PATH, logged in (``gh auth status``; GH_TOKEN counts)."""
    gh = shutil.which("gh")
    if gh is None:
        raise PullRequestUnavailable(
            "gh (GitHub CLI) is not installed, so no pull request can be opened",
            hint="install it (https://cli.github.com, or apt install gh) and run: gh auth login",
        )
    status = _run_gh([gh, "auth", "status"], None, check=False)
    if status.returncode != 0:
        raise PullRequestUnavailable("gh is not logged in to GitHub", hint="run: gh auth login (or set GH_TOKEN)")
    return gh


def _remote(info: WorktreeInfo, wanted: str | None) -> str:
    """The remote to push to: the one given, else ``origin``, else the only one."""
    names = git_merge.remotes(info.repo)
    if wanted is not None:
        if wanted not in names:
            raise PullRequestUnavailable(
                f"the repository {info.repo} has no remote {wanted!r}",
                hint=f"its remotes: {', '.join(names) or 'none'}",
            )
        return wanted
    if not names:
        raise PullRequestUnavailable(
            f"the repository {info.repo} has no remote to push to",
            hint=f"add one: git -C {info.repo} remote add origin git@github.com:OWNER/REPO.git",
        )
    if "origin" in names or len(names) == 1:
        return "origin" if "origin" in names else names[0]
    raise PullRequestUnavailable(
        f"the repository {info.repo} has several remotes and none is origin", hint="choose one with --remote"
    )


def _run_gh(argv: list[str], cwd: str | None, check: bool) -> proc.Completed:
    try:
        return proc.run(argv, check=check, timeout=GH_TIMEOUT_SEC, cwd=cwd)
    except CommandError as e:
        raise PullRequestUnavailable(f"gh could not run: {e.message}") from e


def _title(record: SessionRecord) -> str:
    first = next((line.strip() for line in record.prompt.splitlines() if line.strip()), record.name)
    return shorten(first, TITLE_CHARS)


def _body(record: SessionRecord, info: WorktreeInfo) -> str:
    parts = ["## Task", "", shorten(record.prompt, 4000), "", "## Summary", ""]
    parts.append(shorten(record.result_preview, 6000) if record.result_preview else "(the session left no summary)")
    facts = f"clawunits session `{record.name}` [{record.id}], branch `{info.branch}` from `{info.base}`"
    facts += f", {record.num_turns} turn(s), ${record.cost_usd:.2f}"
    return "\n".join([*parts, "", "---", facts])


def _url(text: str) -> str:
    urls = URL_RE.findall(text)
    return urls[-1] if urls else text.strip()


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""
