"""The search box's results page (``/search``: a single exact hit goes straight to its unit), the
customer's page (``/customers/{id}``: their details and numbers, edited by the call centre) and the
form that registers a new customer (``/customers/new``)."""

from __future__ import annotations

from typing import Annotated

import psycopg
from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from backoffice.customers import service
from backoffice.customers.schemas import LANGUAGES, CustomerFields, NewCustomer
from backoffice.customers.search import search
from backoffice.deps import DbConn, RowId, SettingsDep
from backoffice.staff.guard import Allow, CurrentStaff
from backoffice.templating import templates

# The search shows names, numbers and national ids: not for viewers (investors).
search_router = APIRouter(tags=["pages"], dependencies=[Depends(Allow("call_centre", "finance"))])
router = APIRouter(tags=["pages"], dependencies=[Depends(Allow("call_centre", "finance"))])
edit_router = APIRouter(tags=["pages"], dependencies=[Depends(Allow("call_centre"))])
# Registering a customer (the call centre, as the API's POST /api/v1/customers). Mounted before ``router``:
# ``/customers/new`` would otherwise be read as ``/customers/{customer_id}``.
new_router = APIRouter(tags=["pages"], dependencies=[Depends(Allow("call_centre"))])


@search_router.get("/search", response_class=HTMLResponse)
def search_page(request: Request, conn: DbConn, settings: SettingsDep, q: str = "") -> Response:
    hits = search(conn, q[:200], 50, regions=settings.search_phone_regions)
    exact = [h for h in hits if h.score >= 1.0]
    if len(hits) == 1 and exact and hits[0].serial:
        return RedirectResponse(hits[0].url, status_code=303)
    return templates.TemplateResponse(request, "search.html", {"q": q, "search_q": q, "hits": hits})


def _customer_page(request: Request, conn: DbConn, customer_id: int, *, done: str | None = None,
                   refused: str | None = None, status: int = 200) -> Response:  # fmt: skip
    customer = service.get_customer(conn, customer_id)
    if customer is None:
        raise HTTPException(404, f"no customer {customer_id}")
    context = {"c": customer, "languages": LANGUAGES, "done": done, "refused": refused,
               "notes": service.notes(conn, customer_id, 20), "units": service.units_of(conn, customer_id)}  # fmt: skip
    return templates.TemplateResponse(request, "customer.html", context, status_code=status)


@router.get("/customers/{customer_id}", response_class=HTMLResponse)
def customer_page(
    customer_id: RowId, request: Request, conn: DbConn, saved: bool = False, registered: bool = False
) -> Response:
    done = "Registered." if registered else "Saved." if saved else None
    return _customer_page(request, conn, customer_id, done=done)


@edit_router.post("/customers/{customer_id}")
def edit_customer(
    customer_id: RowId, request: Request, conn: DbConn, settings: SettingsDep, staff: CurrentStaff,
    name: Annotated[str, Form(max_length=200)], phones: Annotated[str, Form(max_length=400)] = "",
    national_id: Annotated[str, Form(max_length=64)] = "", village: Annotated[str, Form(max_length=100)] = "",
    district: Annotated[str, Form(max_length=100)] = "", latitude: Annotated[str, Form(max_length=30)] = "",
    longitude: Annotated[str, Form(max_length=30)] = "", language: Annotated[str, Form(max_length=5)] = "en",
) -> Response:  # fmt: skip
    """The form's fields as they are: empty means none; phones one per line (or comma), the first for SMS."""
    try:
        change = CustomerFields.model_validate({
            "name": name, "phones": [p for p in phones.replace(",", "\n").splitlines() if p.strip()],
            "national_id": national_id or None, "village": village.strip() or None,
            "district": district.strip() or None, "latitude": float(latitude) if latitude.strip() else None,
            "longitude": float(longitude) if longitude.strip() else None, "language": language,
        })  # fmt: skip
        with conn.transaction():
            if service.update_customer(conn, customer_id, change, settings.default_phone_region, staff.actor) is None:
                raise HTTPException(404, f"no customer {customer_id}")
    except (ValueError, service.CustomerRefused) as err:
        return _customer_page(request, conn, customer_id, refused=service.reason(err), status=422)
    return RedirectResponse(f"/customers/{customer_id}?saved=true", status_code=303)


def _new_form(request: Request, form: dict[str, str], refused: str | None = None, status: int = 200) -> Response:
    context = {"form": form, "languages": LANGUAGES, "refused": refused}
    return templates.TemplateResponse(request, "customer_new.html", context, status_code=status)


@new_router.get("/customers/new", response_class=HTMLResponse)
def new_customer_page(request: Request) -> Response:
    return _new_form(request, {"language": "en"})


@new_router.post("/customers/new", response_class=HTMLResponse)
def register_customer(
    request: Request, conn: DbConn, settings: SettingsDep, staff: CurrentStaff,
    name: Annotated[str, Form(max_length=200)] = "", phones: Annotated[str, Form(max_length=400)] = "",
    national_id: Annotated[str, Form(max_length=64)] = "", village: Annotated[str, Form(max_length=100)] = "",
    district: Annotated[str, Form(max_length=100)] = "", language: Annotated[str, Form(max_length=5)] = "en",
) -> Response:  # fmt: skip
    """A new customer from the form (phones one a line, read in PAYGO_DEFAULT_PHONE_REGION unless they carry
    their country code); a refusal shows the form again as it was typed, with the reason on top."""
    typed = {"name": name, "phones": phones, "national_id": national_id, "village": village,
             "district": district, "language": language}  # fmt: skip
    try:
        new = NewCustomer.model_validate({
            "name": name, "phones": [p for p in phones.replace(",", "\n").splitlines() if p.strip()],
            "national_id": national_id or None, "village": village.strip() or None,
            "district": district.strip() or None, "language": language,
        })  # fmt: skip
        with conn.transaction():
            created = service.create_customer(conn, new, settings.default_phone_region, staff.actor)
    except (ValueError, service.CustomerRefused) as err:
        return _new_form(request, typed, service.reason(err), 422)
    except psycopg.errors.UniqueViolation:  # two registrations gave one national id at once
        return _new_form(request, typed, "that national id is already another customer's", 409)
    return RedirectResponse(f"/customers/{created.id}?registered=true", status_code=303)
