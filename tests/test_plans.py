"""Plan answers as a user types them, and the normal form ``respond`` posts for the runner."""

from __future__ import annotations

import pytest

from clawunits.errors import InvalidInput
from clawunits.plans import APPROVE, REJECT, PlanAnswer, parse_answer


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("approve", PlanAnswer(APPROVE)),
        ("Approve v2", PlanAnswer(APPROVE, 2)),
        ("yes v3 default", PlanAnswer(APPROVE, 3, mode="default")),
        ("LGTM acceptedits.", PlanAnswer(APPROVE, mode="acceptEdits")),
        ("reject", PlanAnswer(REJECT)),
        ("reject v2 add tests\nand docs", PlanAnswer(REJECT, 2, feedback="add tests\nand docs")),
        ("no, use the staging db", PlanAnswer(REJECT, feedback="use the staging db")),
        ("approve v2 but also add tests", PlanAnswer(APPROVE, 2, unread="but also add tests")),
    ],
)
def test_parse_answer(text: str, answer: PlanAnswer) -> None:
    assert parse_answer(text) == answer


@pytest.mark.parametrize("text", ["make it shorter", "v2 looks fine", "approval pending?", ""])
def test_other_text_is_no_plan_answer(text: str) -> None:
    assert parse_answer(text) is None


def test_normal_form_names_the_plan_and_round_trips() -> None:
    for answer, text in [
        (PlanAnswer(APPROVE), "approve v4"),
        (PlanAnswer(APPROVE, mode="default"), "approve v4 default"),
        (PlanAnswer(REJECT, feedback="split step 2\ninto two"), "reject v4 split step 2\ninto two"),
    ]:
        assert answer.text(4) == text
        back = parse_answer(text)
        assert back is not None and back.version == 4 and back.text(4) == text


def test_an_approval_with_words_it_cannot_read_is_refused() -> None:
    answer = parse_answer("approve, but add tests")
    assert answer is not None
    with pytest.raises(InvalidInput, match="cannot read 'but add tests'"):
        answer.check()
    assert PlanAnswer(APPROVE, mode="default").check().mode == "default"
