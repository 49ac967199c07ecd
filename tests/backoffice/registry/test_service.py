"""Account numbers carry a check digit that catches a mistyped digit."""

from __future__ import annotations

from backoffice.registry.service import account_number, is_valid_account_number


def test_account_numbers_catch_a_typo() -> None:
    good = account_number(1234)
    assert is_valid_account_number(good)
    typo = good[:3] + str((int(good[3]) + 1) % 10) + good[4:]
    assert not is_valid_account_number(typo)
    swapped = good[:2] + good[3] + good[2] + good[4:]
    assert swapped == good or not is_valid_account_number(swapped)
