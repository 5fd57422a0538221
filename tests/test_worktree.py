"""A git worktree per session: ``launch --worktree``, ``clawunits worktree``, ``kill --remove-worktree`` and gc.

Real git repositories in temporary directories, real session units running the real Claude Code CLI against
the loopback scripted API; the sessions change files through Claude Code's Bash tool.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import Claw, fails, session_names, wait_until
from notifier_harness import configure as configure_notifier
from notifier_harness import running_notifier, session
from test_gc_stats import age

# Commits made by the tests work on a machine with no git identity configured.
GIT_ENV = {
    "GIT_AUTHOR_NAME": "clawunits tests",
    "GIT_AUTHOR_EMAIL": "tests@clawunits.invalid",
    "GIT_COMMITTER_NAME": "clawunits tests",
    "GIT_COMMITTER_EMAIL": "tests@clawunits.invalid",
}


def configure(claw: Claw, **options: Any) -> None:
    """The test's config."""
    claw.write_config(**options)


def git(cwd: Path | str, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")} | GIT_ENV
    proc = subprocess.run(["git", "-C", str(cwd), *args], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
    return proc.stdout.strip()


def make_repo(path: Path) -> Path:
    """A repository on branch main with one commit: README and src/app.py."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    (path / "README").write_text("hello\n")
    (path / "src").mkdir()
    (path / "src" / "app.py").write_text("print('app')\n")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "initial")
    return path


def branches(repo: Path) -> set[str]:
    return set(git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/").splitlines())


def launch(claw: Claw, prompt: str, *args: str, workdir: Path | None = None) -> dict[str, Any]:
    data = claw.json("launch", prompt, "--workdir", str(workdir or claw.workdir), *args)
    claw.launched.append(data["unit"])
    return data


def test_a_session_works_in_its_own_worktree_until_its_merged_branch_is_removed(claw: Claw) -> None:
    repo = make_repo(claw.workdir)
    configure(claw)
    started = launch(claw, "[[bash: printf 'one\\ntwo\\n' > notes.txt]] write notes", "--worktree", "--name", "notes")
    tree = started["worktree"]
    path = Path(tree["path"])
    assert tree["branch"] == "clawunits/notes" and tree["base"] == "main" and tree["removed"] is False
    assert tree["baseCommit"] == git(repo, "rev-parse", "main") and tree["repo"] == str(repo)
    # Default location: under the state directory, by repository and session name.
    assert path == claw.state_dir / "worktrees" / repo.name / "notes"
    assert started["workdir"] == str(path)
    assert claw.wait("notes")["status"] == "completed"

    # The session wrote in its worktree, on its own branch; the user's checkout is untouched.
    assert (path / "notes.txt").read_text() == "one\ntwo\n"
    assert not (repo / "notes.txt").exists() and git(repo, "status", "--porcelain") == ""
    assert git(path, "rev-parse", "--abbrev-ref", "HEAD") == "clawunits/notes"
    assert session(claw, "notes")["worktree"] == tree

    view = claw.json("worktree", "notes")
    assert view["branch"] == "clawunits/notes" and view["exists"] is True and view["clean"] is False
    assert view["status"] == [{"code": "??", "path": "notes.txt"}]
    assert view["diffStat"]["files"] == [{"path": "notes.txt", "added": 2, "deleted": 0, "untracked": True}]
    assert view["ahead"] == 0 and view["merged"] is True
    text = claw.run("worktree", "notes").stdout
    assert "Branch: clawunits/notes (from main; merged into main)" in text
    assert "notes.txt | " in text and "1 file(s) changed, 2 insertion(s)(+)" in text

    # A resumed session continues in the same worktree.
    resumed = json.loads(claw.run("resume", "notes", "[[bash: echo three >> notes.txt]] add one", "--json").stdout)
    claw.launched.append(resumed["unit"])
    assert resumed["workdir"] == str(path) and resumed["worktree"] == tree
    assert claw.wait(resumed["id"])["status"] == "completed"
    assert (path / "notes.txt").read_text() == "one\ntwo\nthree\n"

    # Uncommitted work is never deleted.
    killed = claw.json("kill", resumed["id"], "--remove-worktree")
    assert killed["worktree"]["removed"] is False
    assert "1 uncommitted change(s)" in killed["worktree"]["reason"] and path.is_dir()
    assert "Worktree kept: " in killed["message"]

    # Nor are commits that are not merged into the base.
    git(path, "add", "notes.txt")
    git(path, "commit", "-q", "-m", "notes")
    kept = claw.run("kill", "notes", "--remove-worktree")
    assert "Worktree kept: branch clawunits/notes has 1 commit(s) not merged into main" in kept.stdout
    assert path.is_dir() and "clawunits/notes" in branches(repo)
    view = claw.json("worktree", "notes")
    assert view["ahead"] == 1 and view["merged"] is False and view["clean"] is True
    assert view["commits"][0]["subject"] == "notes"
    assert view["diffStat"]["files"] == [{"path": "notes.txt", "added": 3, "deleted": 0, "untracked": False}]

    # Merged: the worktree and its branch go, for both sessions that shared it.
    git(repo, "merge", "-q", "--ff-only", "clawunits/notes")
    removed = claw.json("kill", "notes", "--remove-worktree")
    assert removed["alreadyFinished"] is True and removed["worktree"]["removed"] is True
    assert not path.exists() and branches(repo) == {"main"}
    assert (repo / "notes.txt").read_text() == "one\ntwo\nthree\n"
    assert session(claw, "notes")["worktree"]["removed"] is True
    assert session(claw, resumed["id"])["worktree"]["removed"] is True
    assert claw.json("worktree", "notes")["exists"] is False
    assert "🌿 clawunits/notes from main (removed)" in claw.run("sessions", "--all").stdout

    # Its conversation cannot continue in a directory that is gone.
    error = fails(claw, "resume", "notes", "more", code=4, same=session_names)
    assert "the worktree of session notes [" in error and "was removed" in error


def test_base_branch_subdirectory_and_taken_names(claw: Claw) -> None:
    repo = make_repo(claw.workdir)
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "src" / "feature.py").write_text("FEATURE = 1\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "feature")
    git(repo, "checkout", "-q", "main")
    git(repo, "branch", "clawunits/taken")  # left behind by someone: the session takes the next name
    trees = claw.workdir.parent / "trees"
    configure(claw, worktreeDir=str(trees))

    s = launch(
        claw,
        "[[bash: cat feature.py]] read",
        "--worktree",
        "--base",
        "feature",
        "--name",
        "taken",
        workdir=repo / "src",
    )
    tree = s["worktree"]
    assert s["name"] == "taken-2" and tree["branch"] == "clawunits/taken-2" and tree["base"] == "feature"
    assert tree["path"] == str(trees / repo.name / "taken-2")
    # The workdir's counterpart inside the worktree, at the base branch's commit.
    assert s["workdir"] == str(Path(tree["path"]) / "src") and tree["repo"] == str(repo / "src")
    assert tree["baseCommit"] == git(repo, "rev-parse", "feature")
    assert claw.wait(s["id"])["status"] == "completed"
    assert "Tool result: FEATURE = 1" in claw.json("output", s["id"])["lines"]
    view = claw.json("worktree", s["id"])
    assert view["clean"] is True and view["ahead"] == 0 and view["diffStat"]["fileCount"] == 0

    # Many changes: the lists stop at 200 entries, the counts and totals cover all.
    scratch = Path(tree["path"]) / "scratch"
    scratch.mkdir()
    for i in range(205):
        (scratch / f"f{i:03}.txt").write_text("x\n")
    view = claw.json("worktree", s["id"])
    assert view["statusCount"] == 205 and len(view["status"]) == 200
    assert view["diffStat"]["fileCount"] == 205 and len(view["diffStat"]["files"]) == 200
    assert view["diffStat"]["insertions"] == 200  # lines are counted for the listed files
    assert "205 uncommitted change(s)" in view["display"] and "… 155 more files" in view["display"]
    for f in scratch.iterdir():
        f.unlink()
    scratch.rmdir()

    # A branch with no work of its own is merged: kill --remove-worktree stops the session and removes it.
    removed = claw.json("kill", s["id"], "--remove-worktree")
    assert removed["worktree"]["removed"] is True and not Path(tree["path"]).exists()
    assert branches(repo) == {"main", "feature", "clawunits/taken"}


def test_bad_worktree_launches_are_refused_with_one_clear_line(claw: Claw) -> None:
    configure(claw)
    plain = claw.workdir / "plain"
    plain.mkdir()
    error = fails(claw, "launch", "hi", "--workdir", str(plain), "--worktree", code=2, same=session_names)
    assert f"workdir {plain} is not in a git repository: --worktree needs one" in error

    repo = make_repo(claw.workdir / "repo")
    error = fails(
        claw, "launch", "hi", "--workdir", str(repo), "--worktree", "--base", "nope", code=2, same=session_names
    )
    assert f"unknown base 'nope' in {repo}" in error
    error = fails(claw, "launch", "hi", "--workdir", str(repo), "--base", "main", code=2, same=session_names)
    assert "--base needs --worktree" in error
    error = fails(
        claw, "launch", "hi", "--workdir", str(repo), "--worktree", "--resume", "x", code=2, same=session_names
    )
    assert "--worktree cannot be combined with --resume" in error
    git(repo, "checkout", "-q", "--detach")
    error = fails(claw, "launch", "hi", "--workdir", str(repo), "--worktree", code=2, same=session_names)
    assert "HEAD of" in error and "is detached" in error and "--base BRANCH" in error

    # git itself missing: the CLI runs with a PATH that has no git.
    no_git = dict(claw.env, PATH=str(claw.workdir / "empty-bin"))
    argv = [sys.executable, "-m", "clawunits", "launch", "hi", "--workdir", str(repo), "--worktree"]
    proc = subprocess.run(argv, env=no_git, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 10 and proc.stderr.strip().splitlines() == [
        "clawunits: error: git is not installed (or not on PATH) (hint: install git to use --worktree)"
    ]

    # Nothing was left behind: no record, no branch, no worktree directory.
    assert branches(repo) == {"main"} and not (claw.state_dir / "worktrees").exists()
    assert claw.json("sessions", "--all")["count"] == 0

    # A session without a worktree has nothing to show or remove.
    s = launch(claw, "[[text: done]] plain", "--multi-turn-disabled", workdir=repo)
    assert fails(claw, "worktree", s["id"], code=2, same=session_names).endswith(
        "has no worktree (hint: launch with --worktree to get one)"
    )
    fails(claw, "kill", s["id"], "--remove-worktree", code=2, same=session_names)
    assert claw.json("wait", s["id"], "--ended")["status"] == "completed"


def test_a_failed_start_leaves_no_worktree_or_branch(claw: Claw) -> None:
    repo = make_repo(claw.workdir)
    # systemd refuses an environment variable with this name, so the unit does not start.
    configure(claw, env={"NOT VALID": "x"})
    proc = claw.run("launch", "hi", "--workdir", str(repo), "--worktree", "--name", "doomed", "--json", check=False)
    assert proc.returncode == 6, proc
    assert branches(repo) == {"main"} and git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert not (claw.state_dir / "worktrees" / repo.name / "doomed").exists()
    failed = session(claw, "doomed")
    assert failed["status"] == "failed" and failed["worktree"]["removed"] is True


def test_gc_removes_merged_worktrees_of_old_sessions_and_keeps_unmerged_work(claw: Claw) -> None:
    repo = make_repo(claw.workdir)
    configure(claw, maxPersistedSessions=0)
    done = launch(claw, "[[text: nothing to change]] look", "--worktree", "--name", "idle", "--multi-turn-disabled")
    work = launch(claw, "[[bash: echo new > work.txt]] work", "--worktree", "--name", "busy", "--multi-turn-disabled")
    for s in (done, work):
        assert claw.json("wait", s["id"], "--ended")["status"] == "completed"
    busy = Path(work["worktree"]["path"])
    git(busy, "add", "work.txt")
    git(busy, "commit", "-q", "-m", "work")

    # Sessions finished less than an hour ago keep their worktrees (they may still be resumed).
    report = claw.json("gc")
    assert report["worktreesRemoved"] == [] and report["worktreesKept"] == {}
    assert Path(done["worktree"]["path"]).is_dir()

    for s in (done, work):
        age(claw, s["id"], 2)
    report = claw.json("gc")
    assert report["worktreesRemoved"] == [done["id"]]
    assert report["worktreesKept"] == {
        work["id"]: f"branch clawunits/busy has 1 commit(s) not merged into main; kept {busy}"
    }
    assert not Path(done["worktree"]["path"]).exists() and busy.is_dir()
    assert branches(repo) == {"main", "clawunits/busy"}
    # Beyond maxPersistedSessions (0) the record goes, unless it is how the unmerged work is found.
    assert report["deleted"] == [done["id"]]
    assert session(claw, "busy")["worktree"]["removed"] is False
    assert "kept the worktree of " in claw.run("gc").stdout

    git(repo, "merge", "-q", "--ff-only", "clawunits/busy")
    report = claw.json("gc")
    assert report["worktreesRemoved"] == [work["id"]] and report["deleted"] == [work["id"]]
    assert not busy.exists() and branches(repo) == {"main"}


def test_worktree_dir_must_be_absolute(claw: Claw) -> None:
    configure(claw, worktreeDir="trees")
    assert fails(claw, "config", "show", code=2, same=session_names).endswith("worktreeDir must be an absolute path")


def test_notifications_of_a_worktree_session_are_routed_by_the_directory_it_was_launched_for(claw: Claw) -> None:
    repo = make_repo(claw.workdir / "proj")
    rec = configure_notifier(claw, agentChannels={str(repo): "discord|proj"}, fallbackChannel="telegram|999")
    with running_notifier(claw, rec) as n:
        s = launch(claw, "[[text: done]] x", "--worktree", "--name", "routed", "--multi-turn-disabled", workdir=repo)
        assert not s["workdir"].startswith(str(repo))  # the worktree is elsewhere
        wait_until(lambda: len([c for c in rec.sends() if "[routed]" in c.text]) >= 2, what="launched + completed")
        n.settle(s["unit"])
    mine = [c for c in rec.sends() if "[routed]" in c.text]
    assert len(mine) == 2 and {(c.channel, c.target) for c in mine} == {("discord", "proj")}
