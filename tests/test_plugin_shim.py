"""The plugin's own unit tests (node's test runner, a fake OpenClaw api, a stand-in clawunits), run from pytest."""

from __future__ import annotations

import re
import shutil
import subprocess

from conftest import REPO


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
