"""Channel strings, routing and splitting text to a channel's size (pure functions, no systemd)."""

from __future__ import annotations

import random
import re

import pytest

from clawunits.errors import InvalidInput
from clawunits.notifier.channels import (
    Channel,
    agent_channel,
    check_channel,
    parse_channel,
    route,
    split_text,
    text_units,
)

TELEGRAM = Channel("telegram", "123")
DISCORD = Channel("discord", "chan")


@pytest.mark.parametrize(
    ("text", "channel", "args"),
    [
        ("telegram|123", Channel("telegram", "123"), ["--channel", "telegram", "--target", "123"]),
        (
            "telegram|bot2|-100123",
            Channel("telegram", "-100123", "bot2"),
            ["--channel", "telegram", "--account", "bot2", "--target", "-100123"],
        ),
        ("discord|987654321", Channel("discord", "987654321"), ["--channel", "discord", "--target", "987654321"]),
        # The target is the rest: a target may itself contain "|".
        ("slack|work|C1|thread", Channel("slack", "C1|thread", "work"), None),
        # A bare number is a Telegram chat id, as in the seed; negative ids are groups.
        ("123456", Channel("telegram", "123456"), ["--channel", "telegram", "--target", "123456"]),
        ("-1001234567890", Channel("telegram", "-1001234567890"), None),
        (" telegram | 42 ", Channel("telegram", "42"), None),
    ],
)
def test_channel_strings_parse(text: str, channel: Channel, args: list[str] | None) -> None:
    parsed = parse_channel(text)
    assert parsed == channel
    assert parse_channel(str(parsed)) == parsed  # the normalized form reads back the same
    if args is not None:
        assert parsed is not None and parsed.send_args() == args


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "   ",
        "unknown",
        "gateway",
        "command",
        "toolu_01ABC",  # what the seed stored as an origin for tool calls
        "Telegram|123",  # channel names are lower case
        "tele gram|123",
        "-telegram|123",
        "|123",
        "telegram|",
        "telegram||123",  # an empty account
        "telegram|a|",
        "telegram|12\n3",
        "telegram|12\x003",
        "x" * 33 + "|1",
        "12a",
    ],
)
def test_channel_strings_that_name_no_channel(text: str | None) -> None:
    assert parse_channel(text) is None


def test_check_channel_rejects_with_a_hint_and_normalizes() -> None:
    assert check_channel(" discord | 5 ") == "discord|5"
    with pytest.raises(InvalidInput) as e:
        check_channel("unknown")
    assert "channel|target" in (e.value.hint or "")


def test_agent_channels_most_specific_prefix_wins() -> None:
    # Seed issue #9: the broader workspace entry must not shadow a project inside it, whatever the order.
    channels = {"/a": "telegram|1", "/a/b": "telegram|2", "/a/b/c/": "telegram|3", "/x/": "telegram|4"}
    assert agent_channel("/a/b/c/d", channels) == "telegram|3"
    assert agent_channel("/a/b/c", channels) == "telegram|3"
    assert agent_channel("/a/b/", channels) == "telegram|2"
    assert agent_channel("/a/b/z", channels) == "telegram|2"
    assert agent_channel("/a/bc", channels) == "telegram|1"  # /a/b is not a prefix of /a/bc
    assert agent_channel("/a", channels) == "telegram|1"
    assert agent_channel("/ab", channels) is None
    assert agent_channel("/x", channels) == "telegram|4"
    assert agent_channel("/y", channels) is None
    assert agent_channel("/anything", {"/": "telegram|9", "/anything/deeper": "telegram|8"}) == "telegram|9"
    reversed_order = dict(reversed(list(channels.items())))
    assert agent_channel("/a/b/z", reversed_order) == "telegram|2"


def test_route_precedence_origin_then_agent_channels_then_fallback() -> None:
    agents = {"/w": "discord|agent"}
    r = route("telegram|origin", "/w/p", agents, "slack|fallback")
    assert (str(r.channel), r.why) == ("telegram|origin", "origin channel")
    r = route(None, "/w/p", agents, "slack|fallback")
    assert (str(r.channel), r.why) == ("discord|agent", "agentChannels")
    # An origin that names no channel (the seed stored "unknown") falls through.
    r = route("unknown", "/elsewhere", agents, "slack|fallback")
    assert (str(r.channel), r.why) == ("slack|fallback", "fallbackChannel")
    # A broken agentChannels value falls through to the fallback.
    r = route(None, "/w", {"/w": "not a channel"}, "12345")
    assert str(r.channel) == "telegram|12345"
    r = route(None, "/elsewhere", agents, None)
    assert r.channel is None and "/elsewhere" in r.why


def test_short_text_is_one_message_even_at_the_limit() -> None:
    assert split_text("hello", TELEGRAM) == ["hello"]
    exact = "😀" * 2048  # 4096 UTF-16 units
    assert text_units(exact, TELEGRAM) == 4096
    assert split_text(exact, TELEGRAM) == [exact]
    assert split_text("x" * 2000, DISCORD) == ["x" * 2000]


def test_telegram_counts_utf16_units_so_emoji_count_double() -> None:
    text = "😀" * 3000  # 3000 characters, 6000 UTF-16 units
    assert len(text) < 4096 < text_units(text, TELEGRAM)
    chunks = split_text(text, TELEGRAM)
    assert len(chunks) == 2
    assert all(text_units(c, TELEGRAM) <= 4096 for c in chunks)
    assert "".join(chunks) == text
    # Elsewhere a character is a character: the same text fits Slack's 4000 in one message.
    assert split_text(text, Channel("slack", "c")) == [text]


def test_splits_at_line_breaks_when_possible() -> None:
    lines = [f"line {i:04d} " + "x" * 80 for i in range(100)]  # ~9 KB of 90-character lines
    text = "\n".join(lines)
    chunks = split_text(text, DISCORD)
    assert len(chunks) == 5
    assert all(len(c) <= 2000 for c in chunks)
    # Every chunk is whole lines, and nothing is lost or reordered.
    assert "\n".join(chunks) == text
    assert all(c.startswith("line ") and c.endswith("x") for c in chunks)


def test_a_line_over_the_limit_is_cut_at_a_space() -> None:
    words = " ".join(f"word{i}" for i in range(1000))  # one 6.9 KB line
    chunks = split_text(words, DISCORD)
    assert all(len(c) <= 2000 for c in chunks)
    assert "".join(chunks) == words
    assert all(c.endswith(" ") for c in chunks[:-1])  # no word cut in half


def test_a_line_without_spaces_is_cut_hard() -> None:
    text = "y" * 5000
    chunks = split_text(text, DISCORD)
    assert [len(c) for c in chunks] == [2000, 2000, 1000]


@pytest.mark.parametrize("channel", [TELEGRAM, DISCORD, Channel("whatsapp", "1"), Channel("matrix", "r")])
def test_random_texts_every_chunk_fits_and_all_text_survives(channel: Channel) -> None:
    rng = random.Random(f"split-{channel.channel}")
    alphabet = ["a", "b", "é", "😀", "👩‍💻", "中", " ", " ", "\n", "\t"]
    for _ in range(40):
        n = rng.choice([10, 500, 2500, 5000, 12000])
        text = "".join(rng.choice(alphabet) for _ in range(n))
        chunks = split_text(text, channel)
        assert chunks, "a text always gives at least one message"
        assert all(c and text_units(c, channel) <= channel.max_text for c in chunks)
        # Whitespace at a cut may go; every other character arrives, in order.
        assert re.sub(r"\s", "", "".join(chunks)) == re.sub(r"\s", "", text)
