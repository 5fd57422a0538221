"""Security: private state, no shell anywhere, an environment allow-list, and no secret in journal or state.

(One agent acting on another agent's session through the plugin: tests/test_plugin_e2e.py
test_tools_act_for_their_agent_only, against the real OpenClaw gateway.)
"""

from __future__ import annotations

import ast
import re
import stat
import subprocess
import uuid
from pathlib import Path

from conftest import FAKE_CLAUDE, REPO, Claw, unit_properties, wait_until
from notifier_harness import NotifierUnit, configure


def _modes(root: Path) -> list[str]:
    """Everything under ``root`` that another user could read: files not 0600, directories not 0700."""
    loose = []
    for path in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        want = 0o700 if path.is_dir() else 0o600
        if mode != want and not path.is_symlink():
            loose.append(f"{path.relative_to(root.parent)} {mode:o}")
    return loose


def test_everything_a_session_leaves_in_the_state_dir_is_private(claw: Claw) -> None:
    rec = configure(claw, claudePath=str(FAKE_CLAUDE))
    n = NotifierUnit(claw, rec).start()
    try:
        s = claw.launch("[[fake: sleep 2]] first", "--name", "private", "--channel", "telegram|42")
        claw.run("respond", s["id"], "second", "--user-initiated")
        claw.run("fg", s["id"], "--channel", "telegram|42")
        wait_until(lambda: len(rec.sends()) >= 2, timeout=60, what="notifications")
        claw.run("kill", s["id"])
        claw.run("gc")
    finally:
        n.close()
    kinds = {p.relative_to(claw.state_dir).parts[0] for p in claw.state_dir.rglob("*")}
    assert {"sessions", "inbox", "notifier"} <= kinds, kinds  # the test saw the state it means to check
    assert _modes(claw.state_dir) == []


SHELL_CALLS = {"system", "popen", "spawnl", "spawnlp", "spawnv", "spawnvp", "getoutput", "getstatusoutput"}


def test_nothing_in_the_package_runs_through_a_shell() -> None:
    offenders = []
    for path in sorted((REPO / "clawunits").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            shell = any(
                k.arg == "shell" and not (isinstance(k.value, ast.Constant) and not k.value.value)
                for k in node.keywords
            )
            if shell or name in SHELL_CALLS:
                offenders.append(f"{path.name}:{node.lineno} {name}")
    plugin = "\n".join(p.read_text() for p in (REPO / "plugin").rglob("*.js") if "node_modules" not in p.parts)
    if re.search(r"shell\s*:\s*true|\bexecSync\b|(?<![.\w])exec\(", plugin):
        offenders.append("plugin: a shell-based child_process call")
    assert offenders == []


def test_shell_metacharacters_in_every_input_stay_text(claw: Claw) -> None:
    canary = Path(f"/tmp/pwned-{uuid.uuid4().hex[:12]}")
    payload = f"$(touch {canary}) `touch {canary}`; touch {canary} | touch {canary}"
    rec = configure(claw, claudePath=str(FAKE_CLAUDE))
    n = NotifierUnit(claw, rec).start()
    try:
        s = claw.launch(
            f"[[fake: sleep 1]] {payload}", "--name", "meta", "--channel", "telegram|42", "--system-prompt", payload
        )
        claw.run("respond", s["id"], payload, "--user-initiated")
        # The replies quote the text: it went out through `openclaw message send` too.
        wait_until(lambda: any("$(touch" in t for t in rec.texts()), timeout=60, what="the payload in a notification")
        received = wait_until(
            lambda: [r["text"] for r in claw.journal(s["unit"]) if r["type"] == "message_received"],
            timeout=60,
            what="the message to be taken",
        )
        claw.run("kill", s["id"])
    finally:
        n.close()
    assert not canary.exists(), "a shell ran part of the user's text"
    # It reached the session unchanged, as one argument.
    assert received == [payload]


def test_secrets_stay_out_of_the_journal_and_the_state(claw: Claw) -> None:
    secret = f"sk-ant-api03-{uuid.uuid4().hex}"
    private = f"pw-{uuid.uuid4().hex}"
    claw.env.update({"ANTHROPIC_API_KEY": secret, "MY_DATABASE_PASSWORD": private})
    claw.write_config(claudePath=str(FAKE_CLAUDE))
    s = claw.launch("[[fake: env ANTHROPIC_API_KEY]] which key?", "--name", "keyed")
    claw.wait(s["id"])
    env = unit_properties(claw, s["unit"], "Environment")["Environment"]
    assert private not in env, "a variable outside the allow-list reached the session"
    assert f"ANTHROPIC_API_KEY={secret}" in env  # what Claude Code needs does arrive
    claw.run("kill", s["id"])
    everything = subprocess.run(
        ["journalctl", "--no-pager", "-q", "-o", "cat", f"_SYSTEMD_USER_UNIT={s['unit']}"],
        env=claw.env,
        capture_output=True,
        text=True,
    ).stdout
    # The stand-in replied with the key as its text: the runner must not print it into the journal.
    assert everything and secret not in everything
    stored = [p for p in claw.state_dir.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    assert stored == []
    assert secret not in claw.run("sessions", "--json").stdout
    assert secret not in claw.run("output", s["id"], "--full").stdout
