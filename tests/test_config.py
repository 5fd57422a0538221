"""Settings: defaults, the TOML file, and the errors a user gets for a bad file."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from clawunits.state.config import (
    ConfigError,
    Settings,
    config_path,
    load_settings,
    settings_from_dict,
    state_dir,
    write_settings,
)

FULL = """\
maxSessions = 3
defaultBudgetUsd = 1.25
defaultModel = "claude-sonnet-4-5"
defaultWorkdir = "/srv/work"
idleTimeoutMinutes = 12.5
maxPersistedSessions = 20
fallbackChannel = "telegram:1"
agentChannels = { main = "telegram:1", ops = "slack:#ops" }
permissionMode = "acceptEdits"
maxAutoResponds = 0
skipSafetyChecks = true
claudePath = "/opt/claude/bin/claude"
env = { ANTHROPIC_BASE_URL = "http://127.0.0.1:9", FOO = "bar baz" }
passEnv = ["MY_TOKEN", "OTHER"]
stopTimeoutSec = 30
permissionTimeoutSec = 45
planApprovalMode = "default"
stallTimeoutSec = 120.5
openclawPath = "/opt/openclaw/bin/openclaw"
openclawStateDir = "/srv/openclaw/state"
openclawConfigPath = "/srv/openclaw/openclaw.json"
openclawProfile = "work"
memoryMax = "2G"
cpuQuota = "150%"
tasksMax = 256
runtimeMax = "8h"
recoverOnBoot = false
worktreeDir = "/srv/worktrees"
allowedSenders = ["telegram|default|12345", "discord|work|987"]
launchersAnswerOwnSessions = true
restrictReads = true
agentRunsWithoutRequester = "read-only"
wakeAgentOnCommandLaunch = true
notifyPolicy = "status"
notifyPolicyByChannel = { "telegram|bot|5" = "quiet", discord = "all" }
queueLaunches = false
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_defaults_when_there_is_no_file(tmp_path: Path) -> None:
    s = load_settings(tmp_path / "missing.toml")
    assert s == Settings()
    assert s.maxSessions == 5
    assert s.defaultBudgetUsd == 5.0
    assert s.permissionMode == "bypassPermissions"
    assert s.idleTimeoutMinutes == 30
    assert s.maxPersistedSessions == 50
    assert s.maxAutoResponds == 10
    assert s.skipSafetyChecks is False
    assert s.stopTimeoutSec == 15
    assert s.defaultModel is None and s.claudePath is None
    assert s.env == {} and s.passEnv == [] and s.agentChannels == {}
    assert (s.memoryMax, s.cpuQuota, s.tasksMax, s.runtimeMax) == ("4G", "200%", 1024, "24h")


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path, "# nothing set\n")) == Settings()


def test_file_with_every_option(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, FULL))
    assert s == Settings(
        maxSessions=3,
        defaultBudgetUsd=1.25,
        defaultModel="claude-sonnet-4-5",
        defaultWorkdir="/srv/work",
        idleTimeoutMinutes=12.5,
        maxPersistedSessions=20,
        fallbackChannel="telegram:1",
        agentChannels={"main": "telegram:1", "ops": "slack:#ops"},
        permissionMode="acceptEdits",
        maxAutoResponds=0,
        skipSafetyChecks=True,
        claudePath="/opt/claude/bin/claude",
        env={"ANTHROPIC_BASE_URL": "http://127.0.0.1:9", "FOO": "bar baz"},
        passEnv=["MY_TOKEN", "OTHER"],
        stopTimeoutSec=30,
        permissionTimeoutSec=45,
        planApprovalMode="default",
        stallTimeoutSec=120.5,
        openclawPath="/opt/openclaw/bin/openclaw",
        openclawStateDir="/srv/openclaw/state",
        openclawConfigPath="/srv/openclaw/openclaw.json",
        openclawProfile="work",
        memoryMax="2G",
        cpuQuota="150%",
        tasksMax=256,
        runtimeMax="8h",
        recoverOnBoot=False,
        worktreeDir="/srv/worktrees",
        allowedSenders=["telegram|default|12345", "discord|work|987"],
        launchersAnswerOwnSessions=True,
        restrictReads=True,
        agentRunsWithoutRequester="read-only",
        wakeAgentOnCommandLaunch=True,
        notifyPolicy="status",
        notifyPolicyByChannel={"telegram|bot|5": "quiet", "discord": "all"},
        queueLaunches=False,
    )
    # The file above really sets every option there is: a new option needs a line here.
    for f in dataclasses.fields(Settings):
        assert getattr(s, f.name) != getattr(Settings(), f.name), f.name


def test_integer_accepted_where_a_number_is_expected(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, "defaultBudgetUsd = 2\nidleTimeoutMinutes = 1\n"))
    assert s.defaultBudgetUsd == 2 and s.idleTimeoutMinutes == 1


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("maxSesions = 3\n", "maxSesions"),
        ("maxSessions = 3\nbogusOption = true\n", "bogusOption"),
        ("max_sessions = 3\n", "max_sessions"),
        ('maxSessions = "5"\n', "maxSessions"),
        ("maxSessions = 2.5\n", "maxSessions"),
        ("maxSessions = true\n", "maxSessions"),
        ('defaultBudgetUsd = "5"\n', "defaultBudgetUsd"),
        ("defaultBudgetUsd = true\n", "defaultBudgetUsd"),
        ("skipSafetyChecks = 1\n", "skipSafetyChecks"),
        ('skipSafetyChecks = "yes"\n', "skipSafetyChecks"),
        ("defaultModel = 4\n", "defaultModel"),
        ('passEnv = "MY_TOKEN"\n', "passEnv"),
        ("passEnv = [1, 2]\n", "passEnv"),
        ('env = ["A=1"]\n', "env"),
        ("env = { A = 1 }\n", "env"),
        ("agentChannels = { main = 1 }\n", "agentChannels"),
        ('permissionMode = "yolo"\n', "permissionMode"),
        ('permissionMode = "BypassPermissions"\n', "permissionMode"),
        # Claude Code will not switch to bypassPermissions after a plan: refused, not silently ignored.
        ('planApprovalMode = "bypassPermissions"\n', "planApprovalMode"),
        ('planApprovalMode = "plan"\n', "planApprovalMode"),
        ('agentRunsWithoutRequester = "deny"\n', "agentRunsWithoutRequester"),
        ('allowedSenders = ["12345"]\n', "allowedSenders"),
        ("allowedSenders = [12345]\n", "allowedSenders"),
        ('allowedSenders = "telegram|default|1"\n', "allowedSenders"),
        ('restrictReads = "yes"\n', "restrictReads"),
        ('notifyPolicy = "loud"\n', "notifyPolicy"),
        ('notifyPolicyByChannel = { telegram = "loud" }\n', "notifyPolicyByChannel"),
        ("notifyPolicyByChannel = { telegram = 1 }\n", "notifyPolicyByChannel"),
        ("defaultBudgetUsd = -1\n", "defaultBudgetUsd"),
        ("defaultBudgetUsd = 0\n", "defaultBudgetUsd"),
        ("defaultBudgetUsd = nan\n", "defaultBudgetUsd"),
        ("defaultBudgetUsd = inf\n", "defaultBudgetUsd"),
        ("maxSessions = 0\n", "maxSessions"),
        ("idleTimeoutMinutes = 0\n", "idleTimeoutMinutes"),
        ("idleTimeoutMinutes = -5\n", "idleTimeoutMinutes"),
        ("idleTimeoutMinutes = nan\n", "idleTimeoutMinutes"),
        ("maxPersistedSessions = -1\n", "maxPersistedSessions"),
        ("maxAutoResponds = -1\n", "maxAutoResponds"),
        ("stopTimeoutSec = 0\n", "stopTimeoutSec"),
        ("stopTimeoutSec = nan\n", "stopTimeoutSec"),
        ("stopTimeoutSec = inf\n", "stopTimeoutSec"),
    ],
)
def test_bad_option_is_an_error_naming_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert key in err.value.message
    assert str(path) in err.value.message
    assert err.value.exit_code == 2


@pytest.mark.parametrize("text", ["maxSessions = \n", "[unclosed\n", "a = 'x\n"])
def test_malformed_toml_is_an_error_naming_the_file(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert str(path) in err.value.message
    assert err.value.hint


def test_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b'defaultModel = "\xff"\n')
    with pytest.raises(ConfigError, match=r"config\.toml"):
        load_settings(path)


def test_settings_from_dict_validates_like_the_file() -> None:
    assert settings_from_dict({"maxSessions": 2}).maxSessions == 2
    with pytest.raises(ConfigError, match="maxSessions"):
        settings_from_dict({"maxSessions": "2"})


def test_paths_follow_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("CLAWUNITS_CONFIG", "CLAWUNITS_STATE_DIR", "XDG_CONFIG_HOME", "XDG_STATE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert config_path() == tmp_path / ".config" / "clawunits" / "config.toml"
    assert state_dir() == tmp_path / ".local" / "state" / "clawunits"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xc"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xs"))
    assert config_path() == tmp_path / "xc" / "clawunits" / "config.toml"
    assert state_dir() == tmp_path / "xs" / "clawunits"
    monkeypatch.setenv("CLAWUNITS_CONFIG", str(tmp_path / "mine.toml"))
    monkeypatch.setenv("CLAWUNITS_STATE_DIR", str(tmp_path / "st"))
    assert config_path() == tmp_path / "mine.toml"
    assert state_dir() == tmp_path / "st"
    write(tmp_path, "maxSessions = 9\n").rename(tmp_path / "mine.toml")
    assert load_settings().maxSessions == 9


def test_sync_merges_keeping_what_a_person_wrote(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('openclawPath = "/opt/openclaw/bin/openclaw"\nmaxSessions = 2\n')
    written = write_settings({"maxSessions": 4, "stopTimeoutSec": 9, "timeoutMs": 1000}, path)
    assert written == {"openclawPath": "/opt/openclaw/bin/openclaw", "maxSessions": 4, "stopTimeoutSec": 9}
    assert load_settings(path).openclawPath == "/opt/openclaw/bin/openclaw"
    # A key the plugin no longer sets takes its default again; the hand-written one stays.
    assert write_settings({"maxSessions": 4}, path) == {"openclawPath": "/opt/openclaw/bin/openclaw", "maxSessions": 4}
    assert load_settings(path).stopTimeoutSec == Settings().stopTimeoutSec
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_sync_into_an_unreadable_file_fails_and_keeps_it(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("maxSessions = [unclosed\n")
    with pytest.raises(ConfigError, match=r"config\.toml"):
        write_settings({"maxSessions": 4}, path)
    assert path.read_text() == "maxSessions = [unclosed\n"
