"""The plugin's own unit tests (node's test runner, a fake OpenClaw api, a stand-in clawunits), run from pytest."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from typing import Any

import click
from conftest import REPO

from clawunits.cli.main import cli


def node_executable() -> str:
    """The machine's node (any version from 20 on runs these tests), else the Node 24 of the e2e tests."""
    found = shutil.which("node")
    if found:
        return found
    from plugin_harness import provision

    return str(provision().node_bin / "node")


def test_node_test_suite_passes() -> None:
    proc = subprocess.run(
        [node_executable(), "--test", "plugin/test/"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-8000:]
    counts = {k: int(v) for k, v in re.findall(r"^# (tests|pass|fail|cancelled|skipped|todo) (\d+)$", output, re.M)}
    assert counts.get("fail") == 0 and counts.get("cancelled") == 0, counts
    assert counts.get("skipped") == 0 and counts.get("todo") == 0, counts
    # Every file of plugin/test ran: tools, commands, RPC, context, CLI runner, manifest.
    assert counts.get("tests", 0) >= 60 and counts["pass"] == counts["tests"], counts
    for name in ("cli.test.mjs", "context.test.mjs", "plugin.test.mjs", "manifest.test.mjs"):
        assert (REPO / "plugin" / "test" / name).is_file()


def plugin_operations() -> dict[str, Any]:
    """The plugin's parameter tables (plugin/lib/operations.js) as JSON, and its enumerations."""
    script = (
        'import { NOTIFY_POLICIES, OPERATIONS, PERMISSION_MODES, STATUSES } from "./plugin/lib/operations.js";'
        "const tables = { operations: OPERATIONS, permissionModes: PERMISSION_MODES, statuses: STATUSES, "
        "notifyPolicies: NOTIFY_POLICIES };"
        "console.log(JSON.stringify(tables));"
    )
    proc = subprocess.run(
        [node_executable(), "--input-type=module", "-e", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(proc.stdout)


def test_plugin_tables_match_the_cli() -> None:
    """Every option the plugin passes is one the CLI has, and the enumerations are the CLI's choices."""
    tables = plugin_operations()
    for name, op in tables["operations"].items():
        command = cli.commands[op["command"][0]]
        options = {opt for p in command.params if isinstance(p, click.Option) for opt in p.opts}
        for extra in op["command"][1:]:
            assert extra in options, f"{name}: {extra}"
        for param in op["params"]:
            if "flag" in param:
                assert f"--{param['flag']}" in options, f"{name}: clawunits {command.name} has no --{param['flag']}"
        positionals = [p for p in op["params"] if p.get("positional") or p["kind"] == "text"]
        arguments = [p for p in command.params if isinstance(p, click.Argument)]
        assert len(positionals) <= len(arguments), name

    def choices(command: str, option: str) -> list[str]:
        [param] = [p for p in cli.commands[command].params if option in p.opts]
        assert isinstance(param.type, click.Choice)
        return list(param.type.choices)

    assert tables["permissionModes"] == choices("launch", "--permission-mode")
    assert tables["statuses"] == choices("sessions", "--status")
    assert tables["notifyPolicies"] == choices("launch", "--notify")
