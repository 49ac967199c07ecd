"""Token entry on the simulated keypad: the official decoder with the unit's count and used counts,
and the lock-out after repeated invalid entries."""

from __future__ import annotations

from openpaygo import TokenType, generate_token

from firmware_sim.keypad import BLOCK_S, FREE_ATTEMPTS, UNLOCKED_FOREVER, Entry, Keypad

KEY, START = "a29ab82edc5fbbc41ec9530f6dac86b1", 123456789
DAY = 86400.0


def _tokens(values: list[int], kind: TokenType = TokenType.ADD_TIME, count: int = 1) -> list[str]:
    out = []
    for v in values:
        count, token = generate_token(secret_key=KEY, count=count, value=v, token_type=kind, starting_code=START)
        out.append(str(token).zfill(9))
    return out


def test_valid_token_adds_days_and_the_same_token_twice_adds_nothing() -> None:
    pad = Keypad(KEY, START)
    (add,) = _tokens([7])
    entry, credit = pad.enter(add, -100.0)  # locked (credit ran out) before the token
    assert entry is Entry.ACCEPTED and credit == 7 * DAY
    assert pad.enter(add, credit) == (Entry.ALREADY_USED, credit)
    assert pad.invalid_in_row == 0  # a replayed SMS is not a guess


def test_older_add_tokens_entered_out_of_order_are_all_credited() -> None:
    first, second, third = _tokens([1, 2, 3])
    pad = Keypad(KEY, START)
    credit = 0.0
    for token in (third, first, second):  # the SMS of the third payment arrived first
        entry, credit = pad.enter(token, credit)
        assert entry is Entry.ACCEPTED
    assert credit == 6 * DAY
    assert pad.enter(first, credit)[0] is Entry.ALREADY_USED


def test_a_token_too_far_ahead_is_refused() -> None:
    # 40 same-type tokens advance the count by 80: beyond the 64 counts a device looks ahead.
    *_, far = _tokens([1] * 40)
    pad = Keypad(KEY, START)
    assert pad.enter(far, 0.0) == (Entry.INVALID, 0.0)
    (near,) = _tokens([1])
    assert pad.enter(near, 0.0)[0] is Entry.ACCEPTED


def test_disable_payg_unlocks_for_good() -> None:
    pad = Keypad(KEY, START)
    (unlock,) = _tokens([0], TokenType.DISABLE_PAYG)
    assert pad.enter(unlock, 3 * DAY) == (Entry.ACCEPTED, UNLOCKED_FOREVER)


def test_invalid_entries_lock_the_keypad_out_for_a_doubling_time() -> None:
    pad = Keypad(KEY, START)
    (good,) = _tokens([5])
    now = 1_000.0
    for _ in range(FREE_ATTEMPTS):
        assert pad.enter("111111111", 0.0, now)[0] is Entry.INVALID
    # Blocked: even the right token is not looked at until the block ends.
    assert pad.enter(good, 0.0, now + BLOCK_S - 1) == (Entry.BLOCKED, 0.0)
    assert pad.enter("555000111", 0.0, now + BLOCK_S)[0] is Entry.INVALID  # one more guess after the block...
    assert pad.enter(good, 0.0, now + BLOCK_S + 2 * BLOCK_S - 1)[0] is Entry.BLOCKED  # ...blocks twice as long
    entry, credit = pad.enter(good, 0.0, now + 3 * BLOCK_S + 1)
    assert entry is Entry.ACCEPTED and credit == 5 * DAY
    assert pad.invalid_in_row == 0
