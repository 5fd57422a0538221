"""Resource limits: sessions run in clawunits.slice with MemoryMax, CPUQuota, TasksMax and RuntimeMaxSec that
the kernel enforces; a session that runs out of memory fails with that reason and the others go on.

The OOM and TasksMax tests run the real Claude Code CLI, whose Bash tool does the damage; the runtime test
uses the stand-in CLI (tests/fake_claude.py) because only the clock matters there.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import FAKE_CLAUDE, Claw, unit_properties, wait_until

from clawunits.errors import InvalidInput
from clawunits.systemd.limits import Limits, parse_cpu_quota, parse_duration, parse_memory, parse_tasks

GiB = 1024**3


def _kernel_limit(cgroup: str, v1: tuple[str, str], v2: str) -> str:
    """What the kernel enforces for the unit's cgroup (v1 controller hierarchy on hybrid hosts, else v2)."""
    controller, name = v1
    for path in (
        Path("/sys/fs/cgroup", controller, cgroup.lstrip("/"), name),
        Path("/sys/fs/cgroup", cgroup.lstrip("/"), v2),
    ):
        if path.exists():
            return path.read_text().strip()
    raise AssertionError(f"no {controller} controller manages {cgroup}: limits would not be enforced")


@pytest.mark.parametrize(
    ("parse", "text", "expected"),
    [
        (parse_memory, "4G", 4 * GiB),
        (parse_memory, "512M", 512 * 1024**2),
        (parse_memory, "1.5G", int(1.5 * GiB)),
        (parse_memory, "infinity", None),
        (parse_cpu_quota, "150%", 150.0),
        (parse_cpu_quota, "infinity", None),
        (parse_tasks, "64", 64),
        (parse_tasks, 2048, 2048),
        (parse_duration, "90m", 5400.0),
        (parse_duration, "24h", 86400.0),
        (parse_duration, 30, 30.0),
        (parse_duration, "infinity", None),
    ],
)
def test_limit_values_parse(parse: object, text: str, expected: object) -> None:
    assert parse(text) == expected  # type: ignore[operator]


@pytest.mark.parametrize(
    ("parse", "text"),
    [
        (parse_memory, "lots"),
        (parse_memory, "-1G"),
        (parse_memory, "1M"),  # Claude Code cannot start in it
        (parse_cpu_quota, "150"),
        (parse_cpu_quota, "0%"),
        (parse_cpu_quota, "nan%"),
        (parse_tasks, "ten"),
        (parse_tasks, "3"),
        (parse_duration, "soon"),
        (parse_duration, "0"),
    ],
)
def test_bad_limit_values_are_refused(parse: object, text: str) -> None:
    with pytest.raises(InvalidInput):
        parse(text)  # type: ignore[operator]


def test_sessions_run_in_the_slice_with_the_configured_limits_enforced(claw: Claw) -> None:
    claw.write_config(claudePath=str(FAKE_CLAUDE), memoryMax="1G", cpuQuota="50%", tasksMax=200, runtimeMax="2h")
    launched = claw.launch("[[fake: sleep 60]] hold", "--name", "limited")
    props = unit_properties(
        claw, launched["unit"], "Slice", "MemoryMax", "CPUQuotaPerSecUSec", "TasksMax", "RuntimeMaxUSec", "ControlGroup"
    )
    assert props["Slice"] == "clawunits.slice"
    assert "/clawunits.slice/" in props["ControlGroup"]
    assert (props["MemoryMax"], props["CPUQuotaPerSecUSec"], props["TasksMax"], props["RuntimeMaxUSec"]) == (
        str(GiB),
        "500ms",
        "200",
        "2h",
    )
    assert launched["limits"] == {"memoryMax": "1G", "cpuQuota": "50%", "tasksMax": 200, "runtimeMax": "2h"}
    cg = props["ControlGroup"]
    # Set on the unit is not enough: the kernel must hold the session to them.
    assert _kernel_limit(cg, ("memory", "memory.limit_in_bytes"), "memory.max") == str(GiB)
    assert _kernel_limit(cg, ("pids", "pids.max"), "pids.max") == "200"
    quota = _kernel_limit(cg, ("cpu", "cpu.cfs_quota_us"), "cpu.max").split()[0]
    assert int(quota) == 50_000  # 50% of the 100 ms period

    # Per launch, each limit can be changed or lifted.
    other = claw.launch(
        "[[fake: sleep 60]] hold",
        "--name",
        "roomy",
        "--memory-max",
        "2G",
        "--cpu-quota",
        "infinity",
        "--tasks-max",
        "64",
        "--runtime-max",
        "90m",
    )
    props = unit_properties(claw, other["unit"], "MemoryMax", "CPUQuotaPerSecUSec", "TasksMax", "RuntimeMaxUSec")
    assert props == {
        "MemoryMax": str(2 * GiB),
        "CPUQuotaPerSecUSec": "infinity",
        "TasksMax": "64",
        "RuntimeMaxUSec": "1h 30min",
    }
    # A resumed session keeps its limits unless told otherwise.
    wait_until(
        lambda: next(s for s in claw.json("sessions")["sessions"] if s["name"] == "roomy")["claudeSessionId"],
        what="roomy's Claude session id",
    )
    claw.run("kill", "roomy")
    resumed = claw.launch("again", "--resume", "roomy", "--name", "roomy-2")
    assert resumed["limits"] == {"memoryMax": "2G", "cpuQuota": "infinity", "tasksMax": 64, "runtimeMax": "90min"}


def test_bad_limits_are_refused_before_anything_starts(claw: Claw) -> None:
    for option, value in (
        ("--memory-max", "huge"),
        ("--cpu-quota", "2"),
        ("--tasks-max", "-5"),
        ("--runtime-max", "0"),
    ):
        proc = claw.run("launch", "x", "--workdir", str(claw.workdir), option, value, check=False)
        assert proc.returncode == 2 and proc.stderr.startswith("clawunits: error:"), proc.stderr
        assert len(proc.stderr.strip().splitlines()) <= 2 and "Traceback" not in proc.stderr
    assert claw.json("sessions", "--all")["sessions"] == []
    claw.write_config(memoryMax="plenty")
    proc = claw.run("sessions", check=False)
    assert proc.returncode == 2 and "memoryMax" in proc.stderr


EAT = """\
import time
chunks = []
for i in range(200):  # up to 4 GiB, 20 MiB at a time, touched so it is really used
    chunks.append(b"x" * (20 << 20))
    time.sleep(0.01)
print("survived")
"""


def test_a_session_out_of_memory_fails_with_that_reason_and_others_go_on(claw: Claw) -> None:
    (claw.workdir / "eat.py").write_text(EAT)
    hungry = claw.launch("[[bash: python3 eat.py]]", "--name", "hungry", "--memory-max", "600M")
    calm = claw.launch("[[slow: 8]] a calm task", "--name", "calm", "--multi-turn-disabled")
    final = claw.wait(hungry["id"], timeout=120)
    assert final["status"] == "failed" and final["endCause"] == "oom", final
    assert "out of memory" in final["reason"] and "MemoryMax=600M" in final["reason"]
    last = claw.journal(hungry["unit"])[-1]
    assert last["type"] == "exit" and last["cause"] == "oom"
    # The whole unit is gone, not just the process the kernel picked.
    wait_until(
        lambda: unit_properties(claw, hungry["unit"], "SubState")["SubState"] in ("exited", "failed", "dead"),
        what="the out-of-memory session's unit to end",
    )
    assert claw.wait(calm["id"], timeout=120)["status"] == "completed"


SPAWN = """\
import subprocess
children = []
try:
    for i in range(200):
        children.append(subprocess.Popen(["sleep", "30"]))
    print(f"spawned all {len(children)}")
except OSError as e:
    print(f"spawned {len(children)}, then: {e.strerror}")
for c in children:
    c.kill()
for c in children:
    c.wait()  # reaped here: orphaned zombies would hold the unit's tasks until the manager reaps them
"""


def test_tasks_max_stops_a_process_flood_inside_the_session(claw: Claw) -> None:
    (claw.workdir / "spawn.py").write_text(SPAWN)
    launched = claw.launch(
        "[[bash: python3 spawn.py]]", "--name", "flood", "--tasks-max", "60", "--multi-turn-disabled"
    )
    final = claw.wait(launched["id"], timeout=120)
    assert final["status"] == "completed", final  # the session survives; the flood does not
    result = next(r for r in claw.journal(launched["unit"]) if r["type"] == "tool_result")
    assert "Resource temporarily unavailable" in result["summary"], result
    spawned = int(result["summary"].split("spawned ")[1].split(",")[0])
    assert spawned < 60


def test_runtime_limit_stops_the_session_and_says_so(claw: Claw) -> None:
    claw.write_config(claudePath=str(FAKE_CLAUDE))
    launched = claw.launch("[[fake: sleep 120]] long", "--name", "overtime", "--runtime-max", "5")
    final = claw.wait(launched["id"], timeout=60)
    assert final["status"] == "failed" and final["endCause"] == "runtime", final
    assert "RuntimeMaxSec=5s" in final["reason"]


def test_unit_properties_carry_unlimited_as_infinity() -> None:
    props = Limits().unit_properties()
    assert props["MemoryMax"] == props["TasksMax"] == props["RuntimeMaxUSec"] == 2**64 - 1
    assert props["OOMPolicy"] == "stop"
