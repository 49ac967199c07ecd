"""Guessable production keys (issue 22 finding 7): each passed the structural checks of
backoffice/secret_strength.py; zxcvbn sees the keyboard walk, the sequence, the famous words and the year."""

from __future__ import annotations

import pytest

from backoffice.config import SettingsError, load_settings


@pytest.mark.parametrize(
    "guessable",
    [
        "qwertyuiopasdfghjklzxcvbnm123456",
        "correct-horse-battery-staple-2024",
        "0123456789ABCDEFGHIJKLMNOPQRSTUV",
        "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9",
        "Correct-Horse-Battery-Staple-2024",
        "paygo-production-secret-key-2026",
    ],
)
def test_production_refuses_a_guessable_key(guessable: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(environment="production", secret_key=guessable, mpesa_allowed_sources="196.201.214.0/24")
    assert str(info.value).startswith("PAYGO_SECRET_KEY is too weak for production: ")
    assert "\n" not in str(info.value)
