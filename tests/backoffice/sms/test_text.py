"""The words of the SMS: every template in every language within its segments, the GSM-7 and UCS-2
segment counts, and English when a language (or a kind in a language) has no template."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from backoffice.sms import text
from backoffice.sms.text import KINDS, LANGUAGES, segments

# The longest values a text can carry: a 7-digit amount in a currency with decimals, 995 days, a long serial.
WORST = {"amount": "10,000,000.00 UGX", "token": "123 456 789", "days": 995, "until": "2026-12-31",
         "account": "12345678", "serial": "SHS-000000001", "days_left": 14}  # fmt: skip


def test_gsm7_segments() -> None:
    assert segments("a" * 160) == text.Segments("gsm7", 160, 1)
    assert segments("a" * 161) == text.Segments("gsm7", 161, 2)  # concatenated: 153 septets each
    assert segments("a" * 306).count == 2 and segments("a" * 307).count == 3
    assert segments("€" * 80) == text.Segments("gsm7", 160, 1)  # the extension table costs two septets
    assert segments("€" * 81).count == 2
    assert segments("Malipo ya KES 350.00 yamepokelewa").encoding == "gsm7"


def test_ucs2_segments() -> None:
    assert segments("ក" * 70) == text.Segments("ucs2", 70, 1)
    assert segments("ក" * 71) == text.Segments("ucs2", 71, 2)  # 67 units each once concatenated
    assert segments("ក" * 134).count == 2 and segments("ក" * 135).count == 3
    assert segments("a" * 69 + "✓").count == 1 and segments("a" * 70 + "✓").count == 2  # one character is enough
    assert segments("😀" * 35) == text.Segments("ucs2", 70, 1)  # beyond the BMP: two UTF-16 units each


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_every_template_fits_its_segments(kind: text.Kind, language: str) -> None:
    """English and Swahili fit one GSM-7 SMS; Khmer, sent as UCS-2 (70 a segment), fits two."""
    sms = text.render(kind, language, **WORST)
    assert sms.language == language, f"{language}/{kind}.txt is missing"
    seg = segments(sms.body)
    if language == "km":
        assert seg.encoding == "ucs2" and seg.count <= 2, (sms.body, seg)
    else:
        assert seg.encoding == "gsm7" and seg.count == 1, (sms.body, seg)
    assert "{" not in sms.body and "\n" not in sms.body


def test_receipts_say_token_date_and_amount_in_each_language() -> None:
    values = WORST | {"amount": "350.00 KES", "days": 10}
    en, sw, km = (text.render("receipt", lang, **values).body for lang in ("en", "sw", "km"))
    for body in (en, sw, km):
        assert "123 456 789" in body and "2026-12-31" in body and "350.00 KES" in body and "12345678" in body
    assert en.startswith("Payment of") and sw.startswith("Tumepokea malipo") and km.startswith("បានទទួលប្រាក់")


def test_english_when_a_language_has_no_template(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert text.render("reminder", "fr", **WORST).language == "en"  # no French at all
    assert text.render("reminder", None, **WORST).language == "en"
    assert text.render("reminder", "../en", **WORST).language == "en"  # never a path of the caller's
    # Swahili without a reminder template: the English one, the others still in Swahili.
    copy = tmp_path / "sms"
    shutil.copytree(text.SMS_DIR, copy)
    (copy / "sw" / "reminder.txt").unlink()
    monkeypatch.setattr(text, "SMS_DIR", copy)
    text._environment.cache_clear()
    try:
        assert text.render("reminder", "sw", **WORST).language == "en"
        assert text.render("receipt", "sw", **WORST).language == "sw"
        (copy / "en" / "reminder.txt").unlink()
        text._environment.cache_clear()  # templates are read once per process
        with pytest.raises(text.SmsTemplateError, match="en/reminder.txt"):
            text.render("reminder", "sw", **WORST)
    finally:
        text._environment.cache_clear()
