"""The texts the CLI renders for each reader (``--surface``): the shell, an agent's tools, a chat command."""

from __future__ import annotations

from clawunits.render import Surface, foreground, launched, responded
from clawunits.state.models import SessionRecord, Status


def _record(**changes: object) -> SessionRecord:
    r = SessionRecord(
        id="a1b2c3d4",
        name="fix-auth",
        prompt="fix the auth bug",
        workdir="/app",
        unit="clawunits-fix-auth-a1b2c3d4.service",
        created_at="2026-12-04T10:00:00Z",
    )
    return r.with_changes(**changes)


def test_launch_text_names_the_next_steps_as_its_reader_takes_them() -> None:
    r = _record()
    shell, tool, chat = (launched(r, s) for s in Surface)
    assert "use clawunits respond to send" in shell and shell.endswith("clawunits output to see output.")
    assert "  Unit: clawunits-fix-auth-a1b2c3d4.service" in shell
    assert "use claude_respond to send" in tool and tool.endswith("claude_output to see output.")
    assert "Unit:" not in tool
    # A chat command answers with the seed's short form.
    assert (
        chat == 'Session launched.\n  Name: fix-auth\n  ID: a1b2c3d4\n  Prompt: "fix the auth bug"\n  Status: starting'
    )


def test_a_resumed_launch_in_chat_says_where_it_resumed_from() -> None:
    chat = launched(_record(resumed_from="old-one", forked=True), Surface.CHAT)
    assert "\n  Resumed from: old-one (forked)\n" in chat


def test_respond_text_per_reader() -> None:
    r = _record()
    assert responded(r, "go on", True, Surface.TOOL).endswith("Use claude_output to see the response.")
    assert responded(r, "go on", False).endswith("Use clawunits output to see the response.")
    assert responded(r, "go on", True, Surface.CHAT) == (
        'Message sent to fix-auth [a1b2c3d4].\n  (interrupted current turn)\n  "go on"'
    )


def test_foreground_footer_points_at_bg_for_its_reader() -> None:
    r = _record(status=Status.RUNNING)
    assert foreground(r, None, ["x"]).endswith("Use claude_bg to detach.")
    assert foreground(r, None, ["x"], surface=Surface.CHAT).endswith("Use /claude_bg to detach.")
    assert foreground(r, None, ["x"], surface=Surface.SHELL).endswith("Use clawunits bg to detach.")
