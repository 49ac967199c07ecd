"""Agent pages: the list of agents with their commissions, one agent's page (sales, active units, PAR 30
of their customers, collections this month, commissions), a field agent's own page with their
customers (phone-sized); the sale (``/sales/new``: the customer found by search, a unit from the stock,
the plan, the deposit, the agent, the installation) and, for administrators, adding an agent
(``/agents/new``) and the commission rules (``/commission-rules``)."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from backoffice.agents import repository, service
from backoffice.agents.schemas import AgentList, CommissionRule, NewAgent
from backoffice.customers import service as customers
from backoffice.customers.schemas import SearchHit
from backoffice.customers.search import search
from backoffice.deps import DbConn, RowId, SettingsDep
from backoffice.inventory import repository as inventory
from backoffice.inventory import service as stock_moves
from backoffice.listing import listed
from backoffice.money import MoneyError, exponent
from backoffice.registry import repository as registry
from backoffice.staff.guard import Allow, CurrentStaff
from backoffice.templating import templates

me = APIRouter(tags=["pages"], dependencies=[Depends(Allow("field_agent"))])
router = APIRouter(tags=["pages"], dependencies=[Depends(Allow("call_centre", "finance", "viewer"))])
finance = APIRouter(tags=["pages"], dependencies=[Depends(Allow("finance"))])
# A sale is the call centre's (as the API's sale record and the inventory's moves are).
sales = APIRouter(tags=["pages"], dependencies=[Depends(Allow("call_centre"))])
# Adding agents and setting commission rules: administrators (as POST /api/v1/agents). Mounted before
# ``router``: ``/agents/new`` would otherwise be read as ``/agents/{agent_id}``.
admin = APIRouter(tags=["pages"], dependencies=[Depends(Allow("admin"))])

AccountNumber = Annotated[str, Form(max_length=40)]


def _refused(request: Request, title: str, message: str, status: int) -> Response:
    return templates.TemplateResponse(request, "refused.html", {"title": title, "message": message}, status_code=status)


@me.get("/agents/me", response_class=HTMLResponse)
def my_page(request: Request, conn: DbConn, staff: CurrentStaff) -> Response:
    agent = repository.agent_of_user(conn, staff.user_id)
    if agent is None:
        return _refused(request, "Not an agent", f"{staff.name} is not an agent: ask an administrator.", 404)
    return templates.TemplateResponse(
        request,
        "agent.html",
        {
            "p": service.page(conn, agent),
            "mine": True,
            "customers": repository.customers(conn, agent.id),
            "parts": inventory.parts_at(conn, agent.location_id) if agent.location_id else [],
            "units": inventory.search_units(conn, "", agent.location_id, 200) if agent.location_id else [],
            "paid": None,
            "currency": None,
        },
    )


@router.get("/agents", response_class=HTMLResponse)
def agents_page(request: Request, conn: DbConn, query: Annotated[AgentList, Depends(listed(AgentList))]) -> Response:
    page = repository.agents_page(conn, query)
    return templates.TemplateResponse(
        request,
        "agents.html",
        {"page": page, "f": query, "agents": page.rows, "commissions": repository.commissions(conn)},
    )


@router.get("/agents/{agent_id}", response_class=HTMLResponse)
def agent_page(
    agent_id: RowId,
    request: Request,
    conn: DbConn,
    paid: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    currency: Annotated[str | None, Query(pattern=r"^[A-Z]{3}$")] = None,
) -> Response:
    agent = repository.get_agent(conn, agent_id)
    if agent is None:
        return _refused(request, "No such agent", f"There is no agent {agent_id}.", 404)
    try:
        exponent(currency or "")
    except MoneyError:
        paid = currency = None  # the note after a payout only: an unknown currency shows nothing
    stock = inventory.parts_at(conn, agent.location_id) if agent.location_id else []
    units = inventory.search_units(conn, "", agent.location_id, 200) if agent.location_id else []
    return templates.TemplateResponse(
        request,
        "agent.html",
        {
            "p": service.page(conn, agent),
            "mine": False,
            "customers": [],
            "parts": stock,
            "units": units,
            "paid": paid,
            "currency": currency,
        },
    )


@finance.post("/agents/{agent_id}/payouts", response_class=HTMLResponse)
def pay_out(
    agent_id: RowId,
    request: Request,
    conn: DbConn,
    staff: CurrentStaff,
    currency: Annotated[str, Form(pattern=r"^[A-Z]{3}$")],
    note: Annotated[str | None, Form(max_length=2000)] = None,
) -> Response:
    """Finance pays an agent everything due in a currency (recorded for payroll, audited)."""
    try:
        with conn.transaction():
            payout = service.pay_out(conn, staff.actor, agent_id, currency, note or None)
    except LookupError as err:
        return _refused(request, "No such agent", str(err), 404)
    except service.AgentError as err:
        return _refused(request, "Nothing paid", str(err), 409)
    return RedirectResponse(f"/agents/{agent_id}?paid={payout.amount}&currency={currency}", status_code=303)


# --- the sale --------------------------------------------------------------------------------------------

SELLABLE = stock_moves.STEPS["install"].from_states


def _sale_form(
    request: Request, conn: DbConn, settings: SettingsDep, *, q: str = "", customer_id: int | None = None,
    typed: dict[str, Any] | None = None, refused: str | None = None, status: int = 200,
) -> Response:  # fmt: skip
    customer = customers.get_customer(conn, customer_id) if customer_id else None
    people: dict[int, SearchHit] = {}  # each customer once (a customer with two units is two hits)
    for hit in search(conn, q[:200], 20, region=settings.default_phone_region) if q else []:
        if hit.customer_id is not None:
            people.setdefault(hit.customer_id, hit)
    context = {
        "q": q, "hits": list(people.values()), "customer": customer,
        "typed": typed or {"deposit_paid": True, "installed": True},
        "units": inventory.units_in_states(conn, SELLABLE), "products": registry.products(conn),
        "agents": [a for a in repository.agents(conn) if a.active], "refused": refused,
    }  # fmt: skip
    return templates.TemplateResponse(request, "sale_new.html", context, status_code=status)


@sales.get("/sales/new", response_class=HTMLResponse)
def new_sale_page(
    request: Request, conn: DbConn, settings: SettingsDep, q: Annotated[str, Query(max_length=200)] = "",
    customer: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> Response:  # fmt: skip
    """First find the customer (name, phone, national id, account: the search box's words), then the rest."""
    return _sale_form(request, conn, settings, q=q.strip(), customer_id=customer)


@sales.post("/sales/new", response_class=HTMLResponse)
def record_sale_page(
    request: Request, conn: DbConn, settings: SettingsDep, staff: CurrentStaff,
    customer_id: Annotated[int, Form(ge=1, le=2**63 - 1)], serial: Annotated[str, Form(max_length=64)] = "",
    product_id: Annotated[str, Form(max_length=20)] = "", agent_id: Annotated[str, Form(max_length=20)] = "",
    deposit_paid: Annotated[bool, Form()] = False, installed: Annotated[bool, Form()] = False,
) -> Response:  # fmt: skip
    typed = {"serial": serial, "product_id": product_id, "agent_id": agent_id, "deposit_paid": deposit_paid,
             "installed": installed}  # fmt: skip
    try:
        if not serial.strip():
            raise service.SaleRefused("pick the unit's serial from the stock")
        sale = service.NewSale(customer_id, serial, _row_id(product_id, "product"), _row_id(agent_id, "agent"),
                               deposit_paid, installed)  # fmt: skip
        with conn.transaction():
            account = service.sell(conn, staff.actor, settings.secret_key, sale)
    except service.SaleRefused as err:
        return _sale_form(request, conn, settings, customer_id=customer_id, typed=typed, refused=str(err), status=422)
    return RedirectResponse(f"/sales/{account}?done=signed", status_code=303)


def _row_id(text: str, what: str) -> int | None:
    if not text.strip():
        return None
    if not re.fullmatch(r"[0-9]{1,18}", text.strip()) or int(text) < 1:
        raise service.SaleRefused(f"choose the {what} from the list")
    return int(text)


@sales.get("/sales/{account_number}", response_class=HTMLResponse)
def sale_page(
    account_number: str, request: Request, conn: DbConn,
    done: Annotated[str | None, Query(pattern=r"^(signed|installed)$")] = None,
) -> Response:  # fmt: skip
    """The sale's confirmation: the contract, its customer, unit, deposit and agent; the install step."""
    sale = repository.sale_summary(conn, account_number[:40])
    if sale is None:
        return _refused(request, "No such sale", f"There is no contract with account number {account_number[:40]!r}.",
                        404)  # fmt: skip
    return templates.TemplateResponse(request, "sale.html", {"s": sale, "done": done, "refused": None})


@sales.post("/sales/{account_number}/install", response_class=HTMLResponse)
def install_page(account_number: str, request: Request, conn: DbConn, staff: CurrentStaff) -> Response:
    """The install step of a sale signed earlier: the unit goes to the contract's customer."""
    try:
        with conn.transaction():
            service.install_sold_unit(conn, staff.actor, account_number[:40])
    except service.SaleRefused as err:
        sale = repository.sale_summary(conn, account_number[:40])
        if sale is None:
            return _refused(request, "No such sale", str(err), 404)
        return templates.TemplateResponse(request, "sale.html", {"s": sale, "done": None, "refused": str(err)},
                                          status_code=409)  # fmt: skip
    return RedirectResponse(f"/sales/{account_number[:40]}?done=installed", status_code=303)


# --- adding an agent ---------------------------------------------------------------------------------------


def _agent_form(request: Request, typed: dict[str, str], *, added: Any = None, refused: str | None = None,
                status: int = 200) -> Response:  # fmt: skip
    context = {"typed": typed, "added": added, "refused": refused}
    return templates.TemplateResponse(request, "agent_new.html", context, status_code=status)


@admin.get("/agents/new", response_class=HTMLResponse)
def new_agent_page(
    request: Request, conn: DbConn, added: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None
) -> Response:
    return _agent_form(request, {"kind": "field"}, added=repository.get_agent(conn, added) if added else None)


def _reason(err: ValidationError) -> str:
    first = err.errors()[0]
    field = ".".join(str(x) for x in first.get("loc", ()))
    return f"{field}: {str(first['msg']).removeprefix('Value error, ')}"


@admin.post("/agents/new", response_class=HTMLResponse)
def add_agent_page(
    request: Request, conn: DbConn, staff: CurrentStaff,
    code: Annotated[str, Form(max_length=100)] = "", name: Annotated[str, Form(max_length=300)] = "",
    kind: Annotated[str, Form(max_length=40)] = "field", phone: Annotated[str, Form(max_length=100)] = "",
    username: Annotated[str, Form(max_length=100)] = "", areas: Annotated[str, Form(max_length=4000)] = "",
) -> Response:  # fmt: skip
    """An agent as POST /api/v1/agents makes one (areas one a line, 'Village' or 'Village/District')."""
    typed = {"code": code, "name": name, "kind": kind, "phone": phone, "username": username, "areas": areas}
    try:
        new = NewAgent.model_validate({
            "code": code.strip(), "name": name.strip(), "kind": kind, "phone": phone.strip() or None,
            "username": username.strip() or None, "areas": [a.strip() for a in areas.splitlines() if a.strip()],
        })  # fmt: skip
        with conn.transaction():
            agent = service.create_agent(conn, staff.actor, new)
    except ValidationError as err:
        return _agent_form(request, typed, refused=_reason(err), status=422)
    except service.AgentError as err:
        return _agent_form(request, typed, refused=str(err), status=409)
    return RedirectResponse(f"/agents/new?added={agent.id}", status_code=303)


# --- commission rules --------------------------------------------------------------------------------------


def _rules_page(request: Request, conn: DbConn, *, saved: str | None = None, typed: dict[str, str] | None = None,
                refused: str | None = None, status: int = 200) -> Response:  # fmt: skip
    context = {"rules": repository.commission_rules(conn), "products": registry.products(conn), "saved": saved,
               "typed": typed or {}, "refused": refused}  # fmt: skip
    return templates.TemplateResponse(request, "commission_rules.html", context, status_code=status)


@admin.get("/commission-rules", response_class=HTMLResponse)
def commission_rules_page(
    request: Request, conn: DbConn, saved: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9 ._-]{1,80}$")] = None
) -> Response:
    return _rules_page(request, conn, saved=saved)


def _basis_points(text: str, what: str) -> int:
    """A percentage as typed ('10', '2.5', '2,5 %') in basis points."""
    try:
        value = Decimal(text.replace("%", "").replace(",", ".").strip())
    except InvalidOperation:
        raise ValueError(f"{what}: a percentage such as 10 or 2.5, not {text[:20]!r}") from None
    if not value.is_finite() or not 0 <= value <= 100 or value * 100 != int(value * 100):
        raise ValueError(f"{what}: a percentage from 0 to 100 with at most two decimals, not {text[:20]!r}")
    return int(value * 100)


def _whole(text: str, what: str, most: int) -> int:
    if not re.fullmatch(r"[0-9]{1,9}", text.strip()) or int(text) > most:
        raise ValueError(f"{what}: a whole number from 0 to {most}, not {text[:20]!r}")
    return int(text)


@admin.post("/commission-rules", response_class=HTMLResponse)
def set_commission_rule_page(
    request: Request, conn: DbConn, staff: CurrentStaff,
    product: Annotated[str, Form(max_length=20)] = "", deposit_share: Annotated[str, Form(max_length=20)] = "",
    payment_share: Annotated[str, Form(max_length=20)] = "", payment_months: Annotated[str, Form(max_length=20)] = "",
    clawback_days: Annotated[str, Form(max_length=20)] = "",
) -> Response:  # fmt: skip
    """A product's rule (or the default, ``product`` empty): shares in per cent, months and days whole."""
    typed = {"product": product, "deposit_share": deposit_share, "payment_share": payment_share,
             "payment_months": payment_months, "clawback_days": clawback_days}  # fmt: skip
    try:
        product_id = None
        code = None
        if product.strip():
            found = [p for p in registry.products(conn) if str(p.id) == product.strip()]
            if not found:
                raise ValueError("choose the product from the list")
            product_id, code = found[0].id, found[0].code
        rule = CommissionRule(
            product_id=product_id, product_code=code,
            deposit_share_bp=_basis_points(deposit_share, "share of the deposit"),
            payment_share_bp=_basis_points(payment_share, "share of each payment"),
            payment_months=_whole(payment_months, "months of payments", 120),
            clawback_days=_whole(clawback_days, "claw-back days", 3650),
        )  # fmt: skip
        with conn.transaction():
            service.set_commission_rule(conn, staff.actor, rule)
    except (ValueError, LookupError) as err:
        return _rules_page(request, conn, typed=typed, refused=str(err), status=422)
    return RedirectResponse(f"/commission-rules?saved={code or 'default'}", status_code=303)
