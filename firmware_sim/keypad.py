"""The unit's OpenPAYGO token entry, as its firmware does it: the official decoder with the unit's
count and used counts, credit applied on the unit's own clock, DISABLE_PAYG unlocking for good,
and a lock-out after repeated invalid entries so that nobody can guess tokens at the keypad.

OpenPAYGO Token leaves the numbers of that lock-out to the manufacturer. Ours: after
``FREE_ATTEMPTS`` invalid entries in a row the keypad refuses input for ``BLOCK_S`` seconds, and
the block doubles with every further invalid entry (up to a day); a valid token clears it. Already
used tokens (a customer typing yesterday's SMS again) do not count as guesses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from openpaygo import TokenType, decode_token

UNLOCKED_FOREVER = float("inf")
FREE_ATTEMPTS = 5
BLOCK_S = 60.0
MAX_BLOCK_S = 86400.0


class Entry(StrEnum):
    ACCEPTED = "accepted"
    ALREADY_USED = "already_used"
    INVALID = "invalid"
    BLOCKED = "blocked"  # refused without being decoded: the keypad is locked out


@dataclass
class Keypad:
    key_hex: str
    starting_code: int
    count: int = 1
    used_counts: list[int] = field(default_factory=list)
    invalid_in_row: int = 0
    blocked_until: float = 0.0  # on the unit's own clock, seconds

    def __post_init__(self) -> None:
        # The library never records use with an empty list (see the OpenPAYGO notes): start with the count.
        self.used_counts = self.used_counts or [self.count]

    def enter(self, token: str, credit_s: float, now_s: float = 0.0) -> tuple[Entry, float]:
        """(what happened, the unit's new credit in seconds) for a token typed at ``now_s``."""
        if now_s < self.blocked_until:
            return Entry.BLOCKED, credit_s
        value, kind, count, used = decode_token(
            token=token, secret_key=self.key_hex, count=self.count, used_counts=self.used_counts,
            starting_code=self.starting_code,
        )  # fmt: skip
        if kind == TokenType.ADD_TIME and value is not None:
            credit_s = max(credit_s, 0.0) + float(value) * 86400
        elif kind == TokenType.SET_TIME and value is not None:
            credit_s = float(value) * 86400
        elif kind == TokenType.DISABLE_PAYG:
            credit_s = UNLOCKED_FOREVER
        elif kind == TokenType.ALREADY_USED:
            return Entry.ALREADY_USED, credit_s
        else:
            self.invalid_in_row += 1
            if self.invalid_in_row >= FREE_ATTEMPTS:
                extra = self.invalid_in_row - FREE_ATTEMPTS
                self.blocked_until = now_s + min(BLOCK_S * 2.0**extra, MAX_BLOCK_S)
            return Entry.INVALID, credit_s
        self.invalid_in_row = 0
        self.count = max(self.count, count)
        self.used_counts = used
        return Entry.ACCEPTED, credit_s
