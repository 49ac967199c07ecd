"""The unit's OpenPAYGO token entry, as its firmware does it: the official decoder with the unit's
count and used counts, credit applied on the unit's own clock, DISABLE_PAYG unlocking for good."""

from __future__ import annotations

from dataclasses import dataclass, field

from openpaygo import TokenType, decode_token

UNLOCKED_FOREVER = float("inf")


@dataclass
class Keypad:
    key_hex: str
    starting_code: int
    count: int = 1
    used_counts: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        # The library never records use with an empty list (see the OpenPAYGO notes): start with the count.
        self.used_counts = self.used_counts or [self.count]

    def enter(self, token: str, credit_s: float) -> tuple[bool, float]:
        """(accepted, the unit's new credit in seconds)."""
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
        else:
            return False, credit_s  # invalid or already used
        self.count = max(self.count, count)
        self.used_counts = used
        return True, credit_s
