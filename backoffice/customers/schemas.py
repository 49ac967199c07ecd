"""What the customers domain takes in and gives out (the API's request and response models too)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, computed_field, field_validator

Language = Literal["en", "km", "sw"]
LANGUAGES: dict[str, str] = {"en": "English", "km": "Khmer", "sw": "Swahili"}

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Short = Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)]
Typed = Annotated[str, StringConstraints(strip_whitespace=True, max_length=32)]


def _national_id(text: str | None) -> str | None:
    """National ids are kept upper-case without spaces (so '12 345 678' and '12345678' are one id)."""
    if text is None:
        return None
    squeezed = "".join(text.split()).upper()
    if not squeezed:
        return None
    if not (2 <= len(squeezed) <= 32) or any(not (c.isascii() and (c.isalnum() or c in "/-")) for c in squeezed):
        raise ValueError("a national id is 2 to 32 letters, digits, '/' or '-'")
    return squeezed


class CustomerFields(BaseModel):
    """The fields a person edits (every one optional: an update sends only what changes)."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    phones: list[Typed] | None = Field(
        default=None, max_length=5, description="as typed; kept in E.164, the first is the SMS number"
    )
    national_id: str | None = Field(default=None, max_length=64)
    village: Short | None = None
    district: Short | None = None
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    language: Language | None = None

    @field_validator("national_id")
    @classmethod
    def _normal_national_id(cls, value: str | None) -> str | None:
        return _national_id(value)


class NewCustomer(CustomerFields):
    name: Name
    phones: list[Typed] = Field(default_factory=list, max_length=5)
    language: Language = "en"


class Phone(BaseModel):
    e164: str
    display: str
    position: int


class Customer(BaseModel):
    id: int
    name: str
    phones: list[Phone]
    national_id: str | None
    village: str | None
    district: str | None
    latitude: float | None
    longitude: float | None
    language: Language
    legacy_phone: str | None = Field(description="an old number that could not be read as E.164: enter it again")
    created_at: datetime
    updated_at: datetime


class NewCallNote(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
    serial: str | None = Field(default=None, max_length=64, description="the unit the call was about")


class CallNote(BaseModel):
    id: int
    customer_id: int
    serial: str | None
    author: str
    body: str
    created_at: datetime


MatchField = Literal["phone", "name", "serial", "account", "national_id"]


class SearchHit(BaseModel):
    """One answer of the search box: a customer, their unit and contract (either may be missing), the
    field that matched and how well (1.0: exactly)."""

    matched: MatchField
    matched_text: str
    score: float
    customer_id: int | None
    customer_name: str | None
    village: str | None
    phone: str | None
    serial: str | None
    account_number: str | None
    contract_state: str | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def url(self) -> str:
        """The page to open: the unit's, or the customer's when they have no unit."""
        if self.serial:
            return f"/units/{self.serial}"
        return f"/customers/{self.customer_id}"
