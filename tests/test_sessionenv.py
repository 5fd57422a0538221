"""The environment a session unit gets from its caller (pure)."""

from __future__ import annotations

import pytest

from clawunits.state.config import Settings
from clawunits.systemd.sessionenv import session_environment

CALLER = {
    "ANTHROPIC_API_KEY": "sk-ant-xyz",
    "ANTHROPIC_BASE_URL": "http://127.0.0.1:8080",
    "CLAUDE_CONFIG_DIR": "/home/dev/.claude-alt",
    "CLAUDE_CODE_USE_BEDROCK": "1",
    "IS_SANDBOX": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_NON_ESSENTIAL_MODEL_CALLS": "1",
    "PATH": "/home/dev/bin:/usr/bin:/bin",
    "HOME": "/home/dev",
    "USER": "dev",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "AWS_REGION": "eu-west-1",
    "HTTPS_PROXY": "http://proxy:3128",
    "CLAWUNITS_CONFIG": "/home/dev/clawunits.toml",
    # Not for the session:
    "SECRET_THING": "hunter2",
    "PYTHONPATH": "/home/dev/evil",
    "LD_PRELOAD": "/tmp/evil.so",
    "LD_LIBRARY_PATH": "/tmp",
    "CLAUDECODE": "1",
    "CLAUDE_CODE_ENTRYPOINT": "cli",
    "CLAWUNITS_STATE_DIR": "/somewhere/else",
    "DBUS_SESSION_BUS_ADDRESS": "unix:path=/run/user/1000/bus",
    "SSH_AUTH_SOCK": "/tmp/ssh-agent",
    "GITHUB_TOKEN": "ghp_xxx",
    "MY_TOKEN": "mine",
    "BASH_FUNC_foo%%": "() { :; }",
    "1BAD": "x",
    "ANTHROPIC-DASH": "x",
}

KEPT = [
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "CLAUDE_CONFIG_DIR",
    "CLAUDE_CODE_USE_BEDROCK",
    "IS_SANDBOX",
    "DISABLE_TELEMETRY",
    "DISABLE_ERROR_REPORTING",
    "DISABLE_AUTOUPDATER",
    "DISABLE_NON_ESSENTIAL_MODEL_CALLS",
    "PATH",
    "HOME",
    "USER",
    "LANG",
    "LC_ALL",
    "AWS_REGION",
    "HTTPS_PROXY",
    "CLAWUNITS_CONFIG",
]


def test_keeps_claude_settings_and_basics_and_drops_the_rest() -> None:
    env = session_environment(CALLER, Settings(), {})
    assert env == {k: CALLER[k] for k in KEPT}


@pytest.mark.parametrize(
    "name",
    [
        "SECRET_THING",
        "PYTHONPATH",
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "CLAUDECODE",
        "CLAUDE_CODE_ENTRYPOINT",
        "CLAWUNITS_STATE_DIR",
        "SSH_AUTH_SOCK",
        "GITHUB_TOKEN",
        "BASH_FUNC_foo%%",
    ],
)
def test_dropped(name: str) -> None:
    assert name not in session_environment(CALLER, Settings(), {})


def test_pass_env_lets_named_variables_through() -> None:
    env = session_environment(CALLER, Settings(passEnv=["MY_TOKEN", "GITHUB_TOKEN", "NOT_SET"]), {})
    assert env["MY_TOKEN"] == "mine"
    assert env["GITHUB_TOKEN"] == "ghp_xxx"
    assert "NOT_SET" not in env
    assert "SECRET_THING" not in env
    # passEnv cannot reintroduce what would make the session think it is nested in another Claude.
    assert "CLAUDECODE" not in session_environment(CALLER, Settings(passEnv=["CLAUDECODE"]), {})


def test_settings_env_adds_and_overrides_the_caller() -> None:
    settings = Settings(env={"ANTHROPIC_BASE_URL": "http://gateway:9", "EXTRA": "value with spaces"})
    env = session_environment(CALLER, settings, {})
    assert env["ANTHROPIC_BASE_URL"] == "http://gateway:9"
    assert env["EXTRA"] == "value with spaces"
    assert env["ANTHROPIC_API_KEY"] == "sk-ant-xyz"


def test_fixed_values_win_over_caller_and_settings() -> None:
    settings = Settings(env={"CLAWUNITS_SESSION_ID": "from-config", "PYTHONUNBUFFERED": "0"})
    caller = {**CALLER, "CLAWUNITS_SESSION_ID": "from-caller"}
    fixed = {"CLAWUNITS_SESSION_ID": "abcd1234", "PYTHONUNBUFFERED": "1", "CLAWUNITS_STATE_DIR": "/state"}
    env = session_environment(caller, settings, fixed)
    assert env["CLAWUNITS_SESSION_ID"] == "abcd1234"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["CLAWUNITS_STATE_DIR"] == "/state"


def test_missing_path_gets_a_default_and_nul_values_are_dropped() -> None:
    env = session_environment({"HOME": "/h", "ANTHROPIC_API_KEY": "bad\0key"}, Settings(), {})
    assert env == {"HOME": "/h", "PATH": "/usr/local/bin:/usr/bin:/bin"}


def test_caller_mapping_is_not_modified() -> None:
    caller = dict(CALLER)
    session_environment(caller, Settings(env={"X": "1"}), {"Y": "2"})
    assert caller == CALLER
