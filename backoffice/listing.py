"""Paging, sorting and filters for every list page, in one place.

A page declares what may be asked of its list as a pydantic model (``ListQuery`` plus its filters, and
``SORTS``, the allow-list of sort keys); ``listed(Model)`` is the FastAPI dependency that validates the
query string into it, or answers a 422 page that says which parameter is wrong (never a 500). The
repository keeps its SQL: it hands its select, its bound parameters and a map from sort key to one of the
select's output columns to ``fetch_page``, which adds the order (an identifier from that map, never text
from the request), the limit and the offset as bound parameters, and counts the rows, so no list stops
silently at some number of rows: the page says "rows 51–100 of 1,234" and links to the others.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from math import ceil
from typing import Any, ClassVar, Generic, TypeVar
from urllib.parse import urlencode

import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from psycopg import sql
from psycopg.rows import class_row
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from backoffice.templating import templates

PER_PAGE_CHOICES = (25, 50, 100, 200)
MAX_PAGE = 100_000
# Rows counted at most: a list of a million units says "more than 10,000" rather than scan them all on
# every page view (the pages stay light); the rows themselves are all reachable page by page.
COUNT_CAP = 10_000


class BadListQuery(Exception):
    """A list's query string that does not say a valid page, order or filter; the message names it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ListQuery(BaseModel):
    """What every list accepts: ``page`` (from 1), ``per`` (rows a page), ``sort`` (a key of ``SORTS``,
    ``-key`` for the other way). Subclasses add their filters as fields and set ``SORTS`` and
    ``DEFAULT_SORT``."""

    model_config = ConfigDict(extra="ignore", frozen=True, validate_default=True)

    SORTS: ClassVar[tuple[str, ...]] = ()
    DEFAULT_SORT: ClassVar[str] = ""

    page: int = Field(1, ge=1, le=MAX_PAGE, description="the page, from 1")
    per: int = Field(50, description=f"rows a page: one of {PER_PAGE_CHOICES}")
    sort: str = Field("", max_length=40, description="a sort key, '-key' for descending")

    @field_validator("per")
    @classmethod
    def _per(cls, value: int) -> int:
        if value not in PER_PAGE_CHOICES:
            raise ValueError(f"must be one of {', '.join(map(str, PER_PAGE_CHOICES))}")
        return value

    @field_validator("sort")
    @classmethod
    def _sort(cls, value: str) -> str:
        value = value.strip() or cls.DEFAULT_SORT
        if value.removeprefix("-") not in cls.SORTS:
            raise ValueError(f"must be one of {', '.join(cls.SORTS)} (or '-' before one, for descending)")
        return value

    @property
    def sort_key(self) -> str:
        return self.sort.removeprefix("-")

    @property
    def descending(self) -> bool:
        return self.sort.startswith("-")

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per

    def params(self, **changes: Any) -> dict[str, Any]:
        """The query string's values that differ from the defaults, with ``changes`` applied."""
        values = {**self.model_dump(), **changes}
        defaults = type(self)()  # type: ignore[call-arg]  # every field has a default
        return {
            k: ("true" if v is True else "false" if v is False else v)
            for k, v in values.items()
            if v is not None and v != "" and v != getattr(defaults, k, None)
        }

    def link(self, **changes: Any) -> str:
        """``?...`` for this list with ``changes`` (e.g. ``page=3``); a new filter or order starts at page 1."""
        if "page" not in changes:
            changes["page"] = 1
        query = urlencode(self.params(**changes))
        return f"?{query}" if query else "?"

    def sort_link(self, key: str) -> str:
        """The link of a column header: sorts by ``key``, or the other way if it already does."""
        return self.link(sort=f"-{key}" if self.sort == key else key)


Q = TypeVar("Q", bound=ListQuery)
T = TypeVar("T")


def _message(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        where = ".".join(str(x) for x in e["loc"]) or "query"
        parts.append(f"{where}: {e['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


def parse(model: type[Q], values: Mapping[str, str]) -> Q:
    """``values`` (a query string's) as ``model``; empty values mean "not given" (a form's "any")."""
    given = {k: v for k, v in values.items() if v.strip() != ""}
    try:
        return model.model_validate(given)
    except ValidationError as err:
        raise BadListQuery(_message(err)) from None


def listed(model: type[Q]) -> Callable[[Request], Q]:
    """The dependency of a list page: ``query: Annotated[UnitList, Depends(listed(UnitList))]``."""

    def dependency(request: Request) -> Q:
        return parse(model, request.query_params)

    return dependency


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list: its rows, how many rows the whole list has, and the query that asked."""

    rows: list[T]
    total: int  # at most COUNT_CAP + 1: above COUNT_CAP, the list has more rows than were counted
    query: ListQuery

    @property
    def total_known(self) -> bool:
        return self.total <= COUNT_CAP

    @property
    def pages(self) -> int:
        return max(1, ceil(min(self.total, COUNT_CAP) / self.query.per))

    @property
    def first_row(self) -> int:
        return min(self.total, self.query.offset + 1)

    @property
    def last_row(self) -> int:
        return self.query.offset + len(self.rows)

    @property
    def has_previous(self) -> bool:
        return self.query.page > 1

    @property
    def has_next(self) -> bool:
        if not self.total_known:
            return len(self.rows) == self.query.per
        return self.query.page < self.pages


def fetch_page(
    conn: psycopg.Connection,
    select: str,
    params: Mapping[str, Any],
    sorts: Mapping[str, str],
    query: ListQuery,
    row_type: type[T],
    tiebreak: str,
) -> Page[T]:
    """For repositories: the page ``query`` asks of ``select`` (SQL with ``%(name)s`` placeholders bound to
    ``params``), ordered by the output column ``sorts[query.sort_key]`` then ``tiebreak`` (unique, so pages
    never overlap), with the row count (up to COUNT_CAP + 1)."""
    column = sorts[query.sort_key]  # KeyError: the model's SORTS and the repository's map disagree
    order = sql.SQL("{} {} nulls last, {}").format(
        sql.Identifier(column), sql.SQL("desc" if query.descending else "asc"), sql.Identifier(tiebreak)
    )
    inner = sql.SQL(select)  # the repository's own constant text, never the request's
    paged = sql.SQL("select * from ({}) listed order by {} limit %(_limit)s offset %(_offset)s").format(inner, order)
    counted = sql.SQL("select count(*) from (select 1 from ({}) listed limit %(_cap)s) capped").format(inner)
    bound = {**params, "_limit": query.per, "_offset": query.offset}
    with conn.cursor(row_factory=class_row(row_type)) as cur:
        rows = cur.execute(paged, bound).fetchall()
    total_row = conn.execute(counted, {**params, "_cap": COUNT_CAP + 1}).fetchone()
    total = int(total_row[0]) if total_row else 0
    return Page(rows, total, query)


def install(app: FastAPI) -> None:
    """Answer a bad list query with 422: JSON for the API, a page that names the parameter for people."""

    @app.exception_handler(BadListQuery)
    def _bad(request: Request, err: BadListQuery) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": err.message}, 422)
        message = f"{err.message}. Change it and try again."
        return templates.TemplateResponse(request, "refused.html", {"title": "This list cannot be shown that way",
                                          "message": message}, status_code=422)  # fmt: skip
