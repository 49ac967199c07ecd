"""Finance's page that ends a contract (``/contracts/end``): returned, repossessed or written off, through
the same service as ``POST /api/contracts/{account}/state``; a contract becomes paid off by itself."""

from __future__ import annotations

from typing import Annotated, get_args

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from backoffice.contracts import repository, service
from backoffice.contracts.api import ContractEnd
from backoffice.deps import DbConn
from backoffice.staff.guard import Allow, CurrentStaff
from backoffice.templating import templates

# Finance, as the API. Mounted before the contract page's router: ``/contracts/end`` would otherwise be
# read as the page of a contract numbered "end".
router = APIRouter(tags=["pages"], dependencies=[Depends(Allow("finance"))])

ENDINGS: dict[str, str] = {
    "returned": "returned: the customer gave the unit back",
    "repossessed": "repossessed: the company took the unit back",
    "written_off": "written off: the debt is given up",
}
assert set(ENDINGS) == set(service.ENDINGS) == set(get_args(ContractEnd.model_fields["state"].annotation))

Account = Annotated[str, Query(max_length=40)]


def _page(request: Request, conn: DbConn, account: str, *, ended: str | None = None, note: str = "",
          state: str = "", refused: str | None = None, status: int = 200) -> Response:  # fmt: skip
    account = account.strip()
    contract = repository.contract_view(conn, account) if account else None
    if account and contract is None and refused is None:
        refused, status = f"there is no contract with account number {account!r}", 404
    context = {"account": account, "c": contract, "endings": ENDINGS, "ended": ended, "note": note,
               "state": state, "refused": refused}  # fmt: skip
    return templates.TemplateResponse(request, "contract_end.html", context, status_code=status)


@router.get("/contracts/end", response_class=HTMLResponse)
def end_page(
    request: Request, conn: DbConn, account: Account = "",
    ended: Annotated[str | None, Query(pattern=r"^(returned|repossessed|written_off)$")] = None,
) -> Response:  # fmt: skip
    """Find the contract by its account number, then say how it ended."""
    return _page(request, conn, account, ended=ended)


@router.post("/contracts/end", response_class=HTMLResponse)
def end_contract(
    request: Request, conn: DbConn, staff: CurrentStaff,
    account: Annotated[str, Form(max_length=40)] = "", state: Annotated[str, Form(max_length=20)] = "",
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:  # fmt: skip
    account = account.strip()
    if state not in ENDINGS:
        return _page(request, conn, account, note=note, refused="say how the contract ended", status=422)
    try:
        with conn.transaction():
            service.end_contract(conn, account, state, staff.actor, note.strip() or None)
    except LookupError as err:
        return _page(request, conn, account, note=note, state=state, refused=str(err), status=404)
    except ValueError as err:
        return _page(request, conn, account, note=note, state=state, refused=str(err), status=409)
    return RedirectResponse(f"/contracts/end?account={account}&ended={state}", status_code=303)
