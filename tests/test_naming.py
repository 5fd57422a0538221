"""Session ids, names and unit names (pure)."""

from __future__ import annotations

import re

import pytest

from clawunits.errors import InvalidInput
from clawunits.state import naming
from clawunits.state.naming import generate_name, new_id, unique_name, unit_name, validate_name

# What systemd accepts in a unit name (unit_name_is_valid: these chars, at most 255 of them).
SYSTEMD_UNIT_CHARS = re.compile(r"^[A-Za-z0-9:_.\\-]+$")
UNIT_NAME_MAX = 255


@pytest.mark.parametrize(
    ("prompt", "name"),
    [
        ("Fix the authentication bug in src/auth.ts", "fix-authentication-bug"),
        ("Please add a README", "readme"),
        ("Refactor database layer to use connection pooling", "refactor-database-layer"),
        ("  UPPER case   Words here ", "upper-case-words"),
        ("why does `npm test` fail?!", "why-npm-test"),
        ("migrate--legacy  v2 code now", "migrate-legacy-v2-code"),
        ("", "session"),
        ("the a an of to", "session"),
        ("!!! ??? ...", "session"),
        ("日本語 のテスト", "session"),
        ("x y z", "session"),
    ],
)
def test_generate_name_takes_three_meaningful_words(prompt: str, name: str) -> None:
    assert generate_name(prompt) == name


@pytest.mark.parametrize(
    "prompt",
    [
        "a" * 500,
        "-leading and trailing- -- - dashes-",
        "ñandú über café",
        "$(rm -rf /) ; `id` && echo",
        "123 456 789 000",
        "..hidden ../../etc/passwd",
    ],
)
def test_generated_names_are_always_valid(prompt: str) -> None:
    assert validate_name(generate_name(prompt)) == generate_name(prompt)


def test_unique_name_appends_a_counter() -> None:
    assert unique_name("fix-auth", set()) == "fix-auth"
    assert unique_name("fix-auth", {"other"}) == "fix-auth"
    assert unique_name("fix-auth", {"fix-auth"}) == "fix-auth-2"
    assert unique_name("fix-auth", {"fix-auth", "fix-auth-2"}) == "fix-auth-3"
    assert unique_name("fix-auth", {"fix-auth", "fix-auth-3"}) == "fix-auth-2"


def test_unique_name_of_a_maximal_name_stays_valid() -> None:
    base = "a" * (naming.MAX_NAME - 3) + "-bb"
    assert len(base) == naming.MAX_NAME
    taken = {base}
    for _ in range(12):
        name = unique_name(base, taken)
        assert name not in taken
        assert validate_name(name) == name
        taken.add(name)
    assert unique_name(base, taken).endswith("-14")


@pytest.mark.parametrize("name", ["fix-auth", "a1.b_c", "a", "9", "x" * naming.MAX_NAME, "v1.2.3", "a_b-c.d"])
def test_validate_name_accepts(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "x" * (naming.MAX_NAME + 1),
        "a/b",
        "/etc",
        "..",
        "a..b",
        "café",
        "naïve",
        "🦀",
        "a;b",
        "$(x)",
        "a$(x)",
        "`id`",
        "a b",
        "a\tb",
        "a\nb",
        "Fix-Auth",
        "ABC",
        "-rf",
        "a-",
        ".hidden",
        "a.",
        "_a",
        "a&b",
        "a|b",
        "a>b",
        "a*",
        "a'b",
        'a"b',
        "a\\b",
        "a%n",
        "a:b",
    ],
)
def test_validate_name_rejects(name: str) -> None:
    with pytest.raises(InvalidInput) as err:
        validate_name(name)
    assert err.value.message
    assert err.value.exit_code == 2


def test_new_id_is_eight_lowercase_alnum_and_random() -> None:
    ids = {new_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(re.fullmatch(r"[a-z0-9]{8}", i) for i in ids)


def test_unit_name_shape() -> None:
    assert unit_name("fix-auth", "ab12cd34") == "clawunits-fix-auth-ab12cd34.service"
    assert unit_name("a1.b_c", "00000000") == "clawunits-a1.b_c-00000000.service"


@pytest.mark.parametrize(
    "name",
    [
        "fix-auth",
        "x" * naming.MAX_NAME,
        "a b/c;$(x)`y`",
        "ünïcødé 日本語 🦀",
        "🦀" * 200,
        "x" * 1000,
        "\x00\n\t",
        "",
    ],
)
def test_unit_name_is_always_a_valid_systemd_unit_name(name: str) -> None:
    sid = new_id()
    unit = unit_name(name, sid)
    assert SYSTEMD_UNIT_CHARS.match(unit), unit
    assert len(unit) <= UNIT_NAME_MAX
    assert unit.startswith("clawunits-")
    assert unit.endswith(f"-{sid}.service")


def test_unit_names_of_different_names_differ() -> None:
    # Escaping must not map distinct names onto one unit (the id makes it unique anyway, but names show).
    assert unit_name("a/b", "ab12cd34") != unit_name("a_b", "ab12cd34")
    assert unit_name("a b", "ab12cd34") != unit_name("a-b", "ab12cd34")
