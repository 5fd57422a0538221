"""Session ids, names and unit names."""

from __future__ import annotations

import os
import re
import string

from clawunits.errors import InvalidInput

ID_ALPHABET = string.ascii_lowercase + string.digits
ID_LENGTH = 8
MAX_NAME = 48
NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?$")
UNIT_PREFIX = "clawunits-"
UNIT_NAME_MAX = 255

# Words that say nothing about the task (the seed's list: articles, pronouns, auxiliaries, prepositions,
# fillers, and generic verbs).
STOP_WORDS = frozenset(
    """
    a an the this that these those it its i me my we our you your he she they them their
    is are was were be been being am do does did done have has had will would shall should can could may
    might must to of in on at by for with from into onto about over under as than then so if or and but not
    no nor up out please just also very all some any each make write create build implement add update
    """.split()  # noqa: SIM905 - a word list reads better as text
)


def new_id() -> str:
    """A random 8-character id of lowercase letters and digits, uniformly from the OS's CSPRNG.

    Bytes are drawn from ``os.urandom`` and those past the largest multiple of the alphabet's size dropped
    (no modulo bias); the ``secrets`` module would do the same but costs every CLI call ~5 ms to import.
    """
    n = len(ID_ALPHABET)
    usable = 256 - 256 % n
    chars: list[str] = []
    while len(chars) < ID_LENGTH:
        chars += [ID_ALPHABET[b % n] for b in os.urandom(ID_LENGTH * 2) if b < usable]
    return "".join(chars[:ID_LENGTH])


def generate_name(prompt: str) -> str:
    """The first three meaningful words of the prompt in kebab-case, or ``session``."""
    words = re.sub(r"[^a-z0-9\s-]", " ", prompt.lower()).split()
    kept = [w.strip("-") for w in words if len(w.strip("-")) > 1 and w not in STOP_WORDS]
    name = "-".join(w for w in kept[:3] if w)
    name = re.sub(r"-{2,}", "-", name)[:MAX_NAME].strip("-")
    return name or "session"


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid session name, else raise :class:`InvalidInput`."""
    if not name:
        raise InvalidInput("session name is empty")
    if len(name) > MAX_NAME:
        raise InvalidInput(f"session name is longer than {MAX_NAME} characters")
    if ".." in name or not NAME_RE.match(name):
        raise InvalidInput(
            f"invalid session name {name!r}",
            hint="use a-z, 0-9, '-', '_' and '.', beginning and ending with a letter or digit",
        )
    return name


def unique_name(base: str, taken: set[str]) -> str:
    """``base``, or ``base-2``, ``base-3`` ... whichever is not taken."""
    if base not in taken:
        return base
    n = 2
    while True:
        suffix = f"-{n}"
        candidate = base[: MAX_NAME - len(suffix)].rstrip("-._") + suffix
        if candidate not in taken:
            return candidate
        n += 1


def unit_name(name: str, session_id: str) -> str:
    """The session's unit, unique forever because it carries the id: ``clawunits-<name>-<id>.service``."""
    sid = escape_unit_component(session_id)
    # systemd refuses unit names longer than 255 characters: cut the name part (never inside an escape).
    room = UNIT_NAME_MAX - len(f"{UNIT_PREFIX}-{sid}.service")
    escaped = ""
    for ch in name:
        piece = escape_unit_component(ch)
        if len(escaped) + len(piece) > room:
            break
        escaped += piece
    return f"{UNIT_PREFIX}{escaped}-{sid}.service"


def escape_unit_component(text: str) -> str:
    """Keep the characters systemd allows in unit names (``[A-Za-z0-9:_.-]``) and ``\\xNN``-escape the rest.

    Validated names never need it; it guarantees a valid unit name whatever reaches this point.
    """
    return "".join(
        ch if ch.isascii() and (ch.isalnum() or ch in ":_.-") else "".join(f"\\x{b:02x}" for b in ch.encode())
        for ch in text
    )
