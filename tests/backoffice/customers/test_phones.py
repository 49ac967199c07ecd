"""Phone numbers to E.164 however they are typed, and refused with a reason when they cannot be one."""

from __future__ import annotations

import pytest

from backoffice.config import SettingsError, load_settings
from backoffice.customers.phones import PhoneRefused, display, search_forms, to_e164


@pytest.mark.parametrize(
    ("typed", "region", "e164"),
    [
        ("+254 712 345 678", "KE", "+254712345678"),  # international, spaced
        ("254712345678", "KE", "+254712345678"),  # the country code without its '+'
        ("254 712-345-678", "KE", "+254712345678"),
        ("0712 345 678", "KE", "+254712345678"),  # national, leading 0
        ("(0712) 345678", "KE", "+254712345678"),
        ("712 345 678", "KE", "+254712345678"),  # national without the 0
        ("+855 12 345 678", "KE", "+85512345678"),  # another country's, typed with its prefix
        ("012 345 678", "KH", "+85512345678"),  # Cambodia's national form in its own region
        ("855 12 345 678", "KH", "+85512345678"),
        ("  +256 772 123456 ", "UG", "+256772123456"),
    ],
)
def test_numbers_typed_any_way_become_e164(typed: str, region: str, e164: str) -> None:
    assert to_e164(typed, region) == e164


@pytest.mark.parametrize(
    ("typed", "why"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("12", "not a valid number in KE"),
        ("0712 34", "not a valid number in KE"),
        ("abc", "only digits"),
        ("0712 345 678 ext 5", "only digits"),
        ("+999 123 456", "country code is unknown"),
        ("012 345 678", "not a valid number in KE"),  # a Cambodian national form, read as Kenyan
        ("+254 712 345 678 9999", "is not a phone number"),
        ("1" * 40, "is not a phone number"),
    ],
)
def test_what_cannot_be_a_number_is_refused_with_the_reason(typed: str, why: str) -> None:
    with pytest.raises(PhoneRefused, match=why):
        to_e164(typed, "KE")


def test_the_search_box_reads_a_number_with_or_without_its_prefix() -> None:
    for typed in ("0712 345 678", "712 345 678", "254 712 345 678", "+254712345678"):
        assert search_forms(typed, "KE") == ["+254712345678"], typed
    assert search_forms("SHS000001", "KE") == [] and search_forms("Amina", "KE") == []
    assert search_forms("12345", "KE") == []  # too few digits to be anybody's number


def test_numbers_are_shown_spaced() -> None:
    assert display("+254712345678") == "+254 712 345678"


def test_the_default_region_is_a_country_code() -> None:
    assert load_settings(environment="test", default_phone_region="kh").default_phone_region == "KH"
    with pytest.raises(SettingsError, match="PAYGO_DEFAULT_PHONE_REGION must be a two-letter country code"):
        load_settings(environment="test", default_phone_region="Kenya")
