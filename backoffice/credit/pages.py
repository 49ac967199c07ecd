"""The call centre's view of one contract: its tokens (with a button to send one again) and what its
unit last reported happening to it."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from backoffice import clock
from backoffice.credit import repository as credit
from backoffice.credit import service
from backoffice.deps import DbConn, RowId
from backoffice.registry import repository as registry
from backoffice.staff.guard import Allow, CurrentStaff
from backoffice.templating import templates

router = APIRouter(tags=["pages"], dependencies=[Depends(Allow("call_centre", "finance"))])
resend_router = APIRouter(tags=["pages"], dependencies=[Depends(Allow("call_centre"))])


@router.get("/contracts/{account_number}", response_class=HTMLResponse)
def contract_page(account_number: str, request: Request, conn: DbConn, resent: int | None = None) -> HTMLResponse:
    contract = registry.contract_by_account(conn, account_number)
    if contract is None:
        raise HTTPException(404, f"no contract with account number {account_number!r}; search for it on the units page")
    return templates.TemplateResponse(
        request,
        "contract.html",
        {"account": account_number, "tokens": credit.tokens_of_contract(conn, contract.id), "resent": resent,
         "events": registry.recent_events(conn, contract.id), "now": clock.utc_now()},
    )  # fmt: skip


@resend_router.post("/contracts/{account_number}/tokens/{token_id}/resend")
def resend_from_page(account_number: str, token_id: RowId, conn: DbConn, staff: CurrentStaff) -> RedirectResponse:
    """The call centre's button: the token goes out again by SMS and to the unit."""
    with conn.transaction():
        queued = service.resend_token(conn, token_id, staff.actor)
    if not queued:
        raise HTTPException(404, f"no token {token_id} with deliveries to repeat")
    return RedirectResponse(f"/contracts/{account_number}?resent={token_id}", status_code=303)
