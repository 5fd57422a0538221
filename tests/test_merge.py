"""Merge follow-through of worktree sessions: ``clawunits merge`` and ``clawunits pr``, and worktree disk use.

Real git repositories, real session units running the real Claude Code CLI against the loopback scripted API
(the sessions change files through Claude Code's Bash tool). ``gh`` cannot reach GitHub here: the pull
request's success path uses a stand-in ``gh`` (named below), whose command line is checked against the real
``gh`` (installed by ``install.sh --dev``), and the real ``gh`` gives the "not logged in" path.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

from conftest import Claw, fails
from test_worktree import branches, configure, git, launch, make_repo

COMMIT = "git -c user.name=claude -c user.email=claude@example.invalid commit -q"


def merge(claw: Claw, *args: str) -> dict[str, Any]:
    return json.loads(claw.run("merge", *args, "--json").stdout)


def finished(claw: Claw, prompt: str, name: str, *args: str) -> dict[str, Any]:
    """A single-turn worktree session that ran ``prompt`` to its end."""
    launch(claw, prompt, "--worktree", "--name", name, "--multi-turn-disabled", *args)
    done = claw.json("wait", name, "--ended", "--timeout", "90")
    assert done["status"] == "completed", done
    return done


def state(repo: Path, path: Path) -> tuple[str, str, str, str]:
    """What a refused merge must leave as it was: main, the session's branch, and both work trees' status."""
    return (
        git(repo, "rev-parse", "main"),
        git(repo, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads/"),
        git(repo, "status", "--porcelain"),
        git(path, "status", "--porcelain"),
    )


def test_merge_takes_committed_and_uncommitted_work_into_the_moved_base_and_removes_the_worktree(claw: Claw) -> None:
    repo = make_repo(claw.workdir)
    configure(claw)
    prompt = f"[[bash: echo lib > lib.py && git add lib.py && {COMMIT} -m 'add lib' && echo notes > notes.txt]] work"
    done = finished(claw, prompt, "feature")
    path = Path(done["worktree"]["path"])
    # Meanwhile the person's checkout of main moved on.
    (repo / "CHANGES").write_text("v2\n")
    git(repo, "add", "CHANGES")
    git(repo, "commit", "-q", "-m", "changes")
    before_main = git(repo, "rev-parse", "main")

    res = merge(claw, "feature")
    assert res["merged"] is True and res["into"] == "main" and res["squash"] is False
    assert res["committedUncommitted"] == 1
    # A merge commit on main, with main and the session's work as parents; the checkout has the files.
    assert git(repo, "rev-parse", "main") == res["commit"]
    parents = git(repo, "rev-list", "--parents", "-n", "1", "main").split()[1:]
    assert parents[0] == before_main and len(parents) == 2
    assert git(repo, "log", "-1", "--format=%s", "main") == "Merge session feature into main"
    assert "clawunits session " + done["id"] in git(repo, "log", "-1", "--format=%b", "main")
    assert (repo / "lib.py").read_text() == "lib\n" and (repo / "notes.txt").read_text() == "notes\n"
    assert git(repo, "status", "--porcelain") == ""
    # The uncommitted file went in as a commit of its own on the session's branch.
    subjects = git(repo, "log", "--format=%s", f"{before_main}..main")
    assert "clawunits: work session feature left uncommitted" in subjects and "add lib" in subjects
    # Merged and clean: the worktree and its branch are gone, and the record says so.
    assert res["worktree"]["removed"] is True and not path.exists() and branches(repo) == {"main"}
    assert claw.json("sessions")["sessions"][-1]["worktree"]["removed"] is True
    text = res["display"]
    assert f"🔀 [feature] merged clawunits/feature into main (commit {res['commit'][:10]})" in text
    assert "Committed 1 file(s) the session left uncommitted first." in text
    assert "Worktree removed:" in text

    # Merging again: one clear line, the worktree is gone.
    again = claw.run("merge", "feature", check=False)
    assert again.returncode == 4 and again.stderr.count("\n") == 1
    assert "was removed" in again.stderr


def test_a_conflict_or_a_dirty_target_changes_nothing_and_resolve_launches_a_session_that_fixes_it(
    claw: Claw,
) -> None:
    repo = make_repo(claw.workdir)
    configure(claw)
    prompt = f"[[bash: echo \"print('ours')\" > src/app.py && {COMMIT} -am ours && echo wip > wip.txt]] change app"
    done = finished(claw, prompt, "clash")
    path = Path(done["worktree"]["path"])
    (repo / "src" / "app.py").write_text("print('theirs')\n")
    git(repo, "commit", "-q", "-am", "theirs")
    before = state(repo, path)

    refused = claw.run("merge", "clash", check=False)
    assert refused.returncode == 10, refused.stderr
    assert refused.stderr == (
        "clawunits: error: merging clawunits/clash into main would conflict in src/app.py; nothing was changed "
        "(hint: clawunits merge clash --resolve launches a session that resolves it)\n"
    )
    data = json.loads(claw.run("merge", "clash", "--json", check=False).stdout)
    assert data["code"] == "merge-conflict" and data["files"] == ["src/app.py"]
    assert state(repo, path) == before and (path / "wip.txt").exists()

    # A target checkout with uncommitted changes is refused too, before anything moves.
    (repo / "README").write_text("edited\n")
    git_dirty = state(repo, path)
    branch_to = "other"
    git(repo, "branch", branch_to, "HEAD~1")  # no conflict there: main before "theirs"
    git(repo, "switch", "-q", branch_to)
    (repo / "README").write_text("edited\n")
    dirty = claw.run("merge", "clash", "--into", branch_to, check=False)
    assert dirty.returncode == 4
    assert f"other has 1 uncommitted change(s) in {repo}; nothing was merged" in dirty.stderr
    assert git(repo, "rev-parse", branch_to) == git(repo, "rev-parse", "main~1")
    assert git(path, "status", "--porcelain") == git_dirty[3]  # the session's work is still uncommitted
    git(repo, "checkout", "-q", "--", "README")
    git(repo, "switch", "-q", "main")
    git(repo, "branch", "-q", "-D", branch_to)

    # --resolve: a session (the same conversation) merges main into the branch in the worktree.
    fix = (
        "[[bash: git merge main >/dev/null; echo \"print('both')\" > src/app.py && git add -A && "
        f"{COMMIT} --no-edit]] resolve"
    )
    res = merge(claw, "clash", "--resolve", "--instructions", fix)
    resolver = res["resolver"]
    assert res["merged"] is False and res["conflicts"] == ["src/app.py"] and resolver is not None
    assert f"launched [{resolver['name']}]" in res["display"]
    resolving = claw.json("sessions")["sessions"][-1]
    claw.launched.append(resolving["unit"])
    assert resolving["resumedFrom"] == done["id"] and resolving["workdir"] == str(path)
    assert claw.json("wait", resolver["id"], "--timeout", "90")["status"] in ("completed", "waiting")
    claw.run("kill", resolver["id"])
    assert git(path, "status", "--porcelain") == ""

    merged = merge(claw, "clash")
    assert merged["merged"] is True, merged
    assert (repo / "src" / "app.py").read_text() == "print('both')\n" and (repo / "wip.txt").exists()


def test_squash_into_a_branch_no_checkout_has_and_the_refusals(claw: Claw) -> None:
    repo = make_repo(claw.workdir)
    configure(claw)
    first = f"echo a > a.txt && echo b > b.txt && git add a.txt b.txt && {COMMIT} -m ab"
    prompt = f"[[bash: {first} && echo c >> b.txt && {COMMIT} -am c]] two"
    done = finished(claw, prompt, "squashy")
    git(repo, "branch", "release")
    release = git(repo, "rev-parse", "release")

    res = merge(claw, "squashy", "--squash", "--into", "release")
    assert res["merged"] is True and res["squash"] is True and res["into"] == "release"
    # One commit with one parent on release; main and the person's checkout are untouched.
    assert git(repo, "rev-list", "--parents", "-n", "1", "release").split()[1:] == [release]
    assert git(repo, "ls-tree", "--name-only", "release").split() == ["README", "a.txt", "b.txt", "src"]
    assert git(repo, "show", "release:b.txt") == "b\nc"
    assert git(repo, "rev-parse", "main") == release and not (repo / "a.txt").exists()
    assert (
        git(repo, "log", "-1", "--format=%s", "release") == "Squashed session squashy (clawunits/squashy) into release"
    )
    # Squash-merged counts as merged: the worktree and branch went.
    assert res["worktree"]["removed"] is True and branches(repo) == {"main", "release"}
    assert not Path(done["worktree"]["path"]).exists()

    # Refusals: one line each, nothing changed.
    plain = claw.launch("[[text: hi]] no worktree", "--name", "plain", "--multi-turn-disabled")
    claw.json("wait", plain["id"], "--ended", "--timeout", "90")
    assert "has no worktree" in fails(claw, "merge", "plain", code=4)
    assert "nosuch" in fails(claw, "merge", "nosuch", code=3)
    busy = launch(claw, "[[slow: 30]] think", "--worktree", "--name", "busy")
    assert "merge it when it has finished" in fails(claw, "merge", "busy", code=4)
    claw.run("kill", busy["id"])
    other = finished(claw, "[[bash: echo x > x.txt]] x", "other")
    assert "no local branch 'nosuch'" in fails(claw, "merge", "other", "--into", "nosuch", code=2)
    assert "invalid branch name" in fails(claw, "merge", "other", "--into", "-x", code=2)
    assert Path(other["worktree"]["path"], "x.txt").exists()


def test_worktree_and_stats_show_disk_use(claw: Claw) -> None:
    make_repo(claw.workdir)
    configure(claw)
    done = finished(claw, "[[bash: head -c 300000 /dev/urandom > blob.bin]] big", "big")
    view = claw.json("worktree", "big")
    assert 300_000 <= view["diskBytes"] < 2_000_000
    assert "   Disk: " in view["display"] and "KiB" in view["display"]
    stats = claw.json("stats")
    assert stats["worktrees"]["count"] == 1 and stats["worktrees"]["diskBytes"] == view["diskBytes"]
    assert stats["worktrees"]["sessions"][0]["path"] == done["worktree"]["path"]
    assert "🌿 Worktrees: 1 on disk" in claw.run("stats").stdout


# -- pull requests -----------------------------------------------------------------------------------------

# A stand-in for `gh`: the real one needs GitHub. It answers `auth status` as logged in and `pr create` like
# gh (the URL on stdout; "already exists" and the URL on stderr the second time), after checking that the
# branch it is asked about was pushed to the repository's origin. It records each command line.
FAKE_GH = r"""#!/usr/bin/env python3
import json, os, subprocess, sys
args = sys.argv[1:]
with open(os.environ["FAKE_GH_LOG"], "a") as log:
    log.write(json.dumps({"args": args, "cwd": os.getcwd()}) + "\n")
if args[:2] == ["auth", "status"]:
    sys.exit(0)
if args[:2] == ["pr", "create"]:
    head = args[args.index("--head") + 1]
    origin = subprocess.run(["git", "remote", "get-url", "origin"], capture_output=True, text=True).stdout.strip()
    pushed = subprocess.run(["git", "ls-remote", origin, "refs/heads/" + head], capture_output=True, text=True).stdout
    if not pushed:
        sys.exit("pull request create failed: head branch not pushed")
    marker = os.environ["FAKE_GH_LOG"] + ".opened"
    if os.path.exists(marker):
        sys.stderr.write('a pull request for branch "%s" into branch "main" already exists:\n'
                         "https://github.com/o/r/pull/7\n" % head)
        sys.exit(1)
    open(marker, "w").close()
    print("https://github.com/o/r/pull/7")
    sys.exit(0)
sys.exit("unexpected gh command: %s" % args)
"""


def gh_env(claw: Claw, tmp: Path, gh: str | None) -> dict[str, str]:
    """PATH with git and python, plus ``gh`` when given (a file to copy, or None for no gh at all)."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    # The real interpreter, not a pyenv shim (a shell script that needs more than this PATH has).
    for tool, where in (("git", shutil.which("git")), ("python3", os.path.realpath(sys.executable))):
        target = bin_dir / tool
        if not target.exists():
            target.symlink_to(where or tool)
    if gh is not None:
        (bin_dir / "gh").unlink(missing_ok=True)
        (bin_dir / "gh").symlink_to(gh)
    git_exec = subprocess.run(["git", "--exec-path"], capture_output=True, text=True).stdout.strip()
    return {**claw.env, "PATH": f"{bin_dir}:{git_exec}", "FAKE_GH_LOG": str(tmp / "gh.log")}


def run_with(claw: Claw, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*claw.cli, *args], env=env, capture_output=True, text=True, timeout=120)


def test_pr_pushes_the_branch_and_opens_a_pull_request_or_says_what_is_missing(claw: Claw, tmp_path: Path) -> None:
    repo = make_repo(claw.workdir)
    configure(claw)
    done = finished(claw, "Add a changelog\n[[bash: echo log > CHANGELOG]] and more", "changelog")
    summary = tomllib.loads((claw.state_dir / "sessions" / f"{done['id']}.toml").read_text())["result_preview"]
    assert summary

    # No remote, no gh, gh not logged in: one line and the fix, nothing pushed.
    no_gh = run_with(claw, gh_env(claw, tmp_path / "a", None), "pr", "changelog")
    assert no_gh.returncode == 13 and "gh (GitHub CLI) is not installed" in no_gh.stderr
    assert "apt install gh" in no_gh.stderr
    real_gh = shutil.which("gh")
    assert real_gh, "install.sh --dev installs gh"
    logged_out = gh_env(claw, tmp_path / "b", real_gh)
    logged_out.update({"GH_CONFIG_DIR": str(tmp_path / "gh-config"), "GH_TOKEN": "", "GITHUB_TOKEN": ""})
    out = run_with(claw, logged_out, "pr", "changelog")
    assert out.returncode == 13 and "gh is not logged in to GitHub (hint: run: gh auth login" in out.stderr

    fake = tmp_path / "gh"
    fake.write_text(FAKE_GH)
    fake.chmod(0o755)
    env = gh_env(claw, tmp_path / "c", str(fake))
    no_remote = run_with(claw, env, "pr", "changelog")
    assert no_remote.returncode == 13 and "has no remote to push to" in no_remote.stderr
    assert "remote add origin" in no_remote.stderr

    remote = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    opened = run_with(claw, env, "pr", "changelog", "--json")
    assert opened.returncode == 0, opened.stderr
    data = json.loads(opened.stdout)
    assert data["url"] == "https://github.com/o/r/pull/7" and data["existing"] is False
    assert data["remote"] == "origin" and data["base"] == "main" and data["committedUncommitted"] == 1
    assert "🔗 [changelog] pull request opened: https://github.com/o/r/pull/7" in data["display"]
    # The branch, with the session's uncommitted work committed, is on the remote.
    pushed = git(remote, "rev-parse", "refs/heads/clawunits/changelog")
    assert git(remote, "show", f"{pushed}:CHANGELOG") == "log"
    calls = [json.loads(line) for line in (tmp_path / "c" / "gh.log").read_text().splitlines()]
    create = next(c for c in calls if c["args"][:2] == ["pr", "create"])
    args = create["args"]
    assert create["cwd"] == str(repo)
    assert args[args.index("--head") + 1] == "clawunits/changelog" and args[args.index("--base") + 1] == "main"
    assert args[args.index("--title") + 1] == "Add a changelog"
    body = args[args.index("--body") + 1]
    assert "## Task" in body and "[[bash: echo log > CHANGELOG]]" in body and summary in body
    assert f"[{done['id']}]" in body

    # Again: the pull request that is open is reported, not opened twice.
    again = json.loads(run_with(claw, env, "pr", "changelog", "--json").stdout)
    assert again["existing"] is True and again["url"] == "https://github.com/o/r/pull/7"
    assert "pull request already open" in again["display"]

    # The stand-in's command line is one the real gh takes: given the same arguments, the real gh (logged
    # out) parses them and stops at the login, exit 4 (gh's "authentication required"; an unknown flag is
    # exit 1). Its words depend on the environment: with CI set it asks for GH_TOKEN instead of `gh auth login`.
    check = subprocess.run(
        [real_gh, *args], cwd=repo, env={**logged_out, "GH_PROMPT_DISABLED": "1"}, capture_output=True, text=True
    )
    assert check.returncode == 4 and "unknown flag" not in check.stderr and "GH_TOKEN" in check.stderr, check.stderr


def test_a_guest_cannot_merge_or_open_pull_requests(claw: Claw) -> None:
    make_repo(claw.workdir)
    configure(claw)
    finished(claw, "[[bash: echo x > x.txt]] x", "guarded")
    guest = ["--via", "command", "--sender", "telegram|default|999"]
    for command in (["merge", "guarded"], ["pr", "guarded"]):
        res = claw.run(*guest, *command, check=False)
        assert res.returncode == 12 and "only the gateway's owners can" in res.stderr, res.stderr
    assert os.path.isdir(claw.json("worktree", "guarded")["path"])
