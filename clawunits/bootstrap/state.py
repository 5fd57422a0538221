"""What bootstrap started or created (:class:`Booted`), saved by ``up`` for ``down`` in another process."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

from clawunits.bootstrap.daemons import Proc
from clawunits.bootstrap.probe import runtime_dir

STATE_VERSION = 1


@dataclass(frozen=True)
class Booted:
    """Exactly what :func:`ensure_user_manager` started or created; empty when everything already ran."""

    uid: int
    runtime_dir: str
    journald: Proc | None = None
    manager: Proc | None = None
    dirs: tuple[str, ...] = ()  # created, in order; removed in reverse when empty
    trees: tuple[str, ...] = ()  # created and filled only by what we started; removed with their contents
    cgroups: tuple[str, ...] = ()  # created, in order (parents first)

    @property
    def is_empty(self) -> bool:
        return not (self.journald or self.manager or self.dirs or self.trees or self.cgroups)

    def merged(self, later: Booted) -> Booted:
        """This record plus what a later call started (for repeated `up`)."""

        def join(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
            return a + tuple(x for x in b if x not in a)

        return dataclasses.replace(
            self,
            journald=later.journald or self.journald,
            manager=later.manager or self.manager,
            dirs=join(self.dirs, later.dirs),
            trees=join(self.trees, later.trees),
            cgroups=join(self.cgroups, later.cgroups),
        )

    def to_json(self) -> str:
        return json.dumps({"version": STATE_VERSION, **dataclasses.asdict(self)}, indent=2)

    @classmethod
    def from_json(cls, text: str) -> Booted:
        data = json.loads(text)
        if data.pop("version", None) != STATE_VERSION:
            raise ValueError("unknown bootstrap state version")
        return cls(
            uid=int(data["uid"]),
            runtime_dir=str(data["runtime_dir"]),
            journald=Proc(**data["journald"]) if data.get("journald") else None,
            manager=Proc(**data["manager"]) if data.get("manager") else None,
            dirs=tuple(data.get("dirs", ())),
            trees=tuple(data.get("trees", ())),
            cgroups=tuple(data.get("cgroups", ())),
        )


def state_path(uid: int | None = None) -> Path:
    """Where `up` records what it started, for `down` in another process."""
    return runtime_dir(uid) / "clawunits-bootstrap" / "state.json"


def save_state(booted: Booted, path: Path | None = None) -> Path:
    """Write ``booted`` atomically with mode 0600."""
    path = path or state_path(booted.uid)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(booted.to_json() + "\n")
    os.replace(tmp, path)
    return path


def load_state(uid: int | None = None, path: Path | None = None) -> Booted | None:
    """The saved record, or None when nothing was saved."""
    try:
        return Booted.from_json((path or state_path(uid)).read_text())
    except FileNotFoundError:
        return None
