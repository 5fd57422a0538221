"""Where the user manager goes in the cgroup tree: ``user.slice/user-UID.slice/user@UID.service`` in every
hierarchy systemd tracks processes in, because journald derives ``_SYSTEMD_USER_UNIT`` from the cgroup path of
the writer; and which resource controllers reach it."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from clawunits.bootstrap.probe import read_file
from clawunits.errors import BootstrapError
from clawunits.systemd.cgroups import cgroup_paths

CGROUP_ROOT = Path("/sys/fs/cgroup")
# Files that must belong to the user for a delegated cgroup (what systemd's Delegate=yes chowns).
DELEGATED_FILES = ("cgroup.procs", "cgroup.threads", "cgroup.subtree_control", "tasks")


def _cgroup_mounts() -> tuple[bool, list[list[str]]]:
    """Whether /sys/fs/cgroup is a pure cgroup2 mount, and every mount as [mountpoint, fstype, options]."""
    mounts = [line.split()[1:4] for line in read_file(Path("/proc/self/mounts")).splitlines()]
    return any(mp == str(CGROUP_ROOT) and fs == "cgroup2" for mp, fs, _ in mounts), mounts


def cgroup_roots() -> list[Path]:
    """Hierarchies systemd tracks processes in: /sys/fs/cgroup on cgroup2 hosts; on hybrid hosts the
    name=systemd and unified mounts (the manager must sit in both, or journald cannot name the unit)."""
    unified, mounts = _cgroup_mounts()
    if unified:
        return [CGROUP_ROOT]
    roots = [Path(mp) for mp, fs, opts in mounts if fs == "cgroup" and "name=systemd" in opts.split(",")]
    roots += [Path(mp) for mp, fs, _ in mounts if fs == "cgroup2" and mp.startswith(f"{CGROUP_ROOT}/")]
    return list(dict.fromkeys(roots))  # a path mounted over again is listed twice


# cgroup-v1 controllers a hybrid host's user@.service gets delegated for resource limits: systemd applies
# MemoryMax= (as memory.limit_in_bytes), TasksMax= and CPUQuota= only in hierarchies it can write to.
V1_RESOURCE_CONTROLLERS = ("memory", "pids", "cpu", "cpuacct")


def resource_roots() -> list[Path]:
    """The v1 resource-controller hierarchies mounted on a hybrid host (none on a cgroup2 host: there
    the controllers live in the unified tree, delegated by user@.service)."""
    unified, mounts = _cgroup_mounts()
    if unified:
        return []
    wanted = set(V1_RESOURCE_CONTROLLERS)
    return list(dict.fromkeys(Path(mp) for mp, fs, opts in mounts if fs == "cgroup" and wanted & set(opts.split(","))))


def user_cgroup(uid: int, service: str | None = None) -> Path:
    """``user.slice/user-UID.slice/user@UID.service``, or another service there (a private manager)."""
    return Path("user.slice", f"user-{uid}.slice", service or f"user@{uid}.service")


def cgroup_pids(top: Path) -> set[int]:
    pids: set[int] = set()
    for dirpath, _dirs, _files in os.walk(top):
        pids.update(int(p) for p in read_file(Path(dirpath, "cgroup.procs")).split())
    return pids


def resource_controllers(pid: int) -> set[str]:
    """The resource controllers (memory, pids, cpu) that manage ``pid``'s own cgroup subtree, so that
    systemd can enforce MemoryMax=, TasksMax= and CPUQuota= for the units below it."""
    paths = cgroup_paths(pid)
    found = set()
    for controller in ("memory", "pids", "cpu"):
        v1 = paths.get(controller)
        if v1 and "/user@" in v1:  # a hybrid host's v1 hierarchy, delegated to the manager
            found.add(controller)
    unified = paths.get("")
    for root in (CGROUP_ROOT, CGROUP_ROOT / "unified"):
        controllers = Path(root, (unified or "").lstrip("/"), "cgroup.controllers")
        if unified and controllers.exists():
            found |= set(read_file(controllers).split()) & {"memory", "pids", "cpu"}
    return found


def make_user_cgroup(
    root: Path, uid: int, gid: int, created: Callable[[str], None], service: str | None = None
) -> Path:
    """Create the user manager's cgroup below ``root`` (``created`` hears of each directory made, parents
    first) and hand it to the user; returns it."""
    leaf = root / user_cgroup(uid, service)
    for p in (*reversed(leaf.relative_to(root).parents), leaf.relative_to(root)):
        if p == Path("."):
            continue
        try:
            (root / p).mkdir()
            os.chmod(root / p, 0o755)  # not left to the umask: the user must reach its own cgroup
        except FileExistsError:
            continue
        except OSError as e:
            raise BootstrapError(
                f"cannot create cgroup {root / p}: {e.strerror}",
                hint="the cgroup filesystem must be writable (containers: --privileged or --cgroupns)",
            ) from None
        created(str(root / p))
    if uid != 0:  # delegate the subtree to the user, as Delegate=yes would
        for target in (leaf, *(leaf / f for f in DELEGATED_FILES if (leaf / f).exists())):
            os.chown(target, uid, gid)
    return leaf
