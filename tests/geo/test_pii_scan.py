"""The suite's leak detector (tests/pii_scan.py) finds what it must and only that."""

from __future__ import annotations

from geo.demo import id_check_digit
from tests.pii_scan import leaks


def _id(first17: str) -> str:
    return first17 + id_check_digit(first17)


def test_it_finds_a_valid_id_number_and_a_mobile_number() -> None:
    number = _id("44532119900307123")
    assert leaks(f'{{"id_number": "{number}"}}') == [f"{number[:3]}…{number[-2:]}"]
    assert leaks("call 13812345678 now") == ["138…78"]


def test_masked_values_and_other_numbers_pass() -> None:
    text = (
        '{"id_number": "4453**********1234", "phone": "138****5678",'
        ' "code": "44532110501100101", "t": 1580947200000, "id": 13812345678901}'
    )
    assert leaks(text) == []


def test_an_18_digit_number_with_a_wrong_check_digit_is_not_an_id() -> None:
    number = _id("44532119900307123")
    wrong = number[:17] + ("0" if number[17] != "0" else "1")
    assert leaks(wrong) == []


def test_an_echo_of_the_callers_own_input_is_not_a_leak() -> None:
    body = '{"detail": "no resident with id 13812345678"}'
    assert leaks(body, echoed="/api/residents/13812345678") == []
    assert leaks(body, echoed="/api/residents/1") == ["138…78"]
