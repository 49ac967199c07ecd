"""Suggestions for unmatched money (issue 26): the account numbers one slip away that pass the check
digit, the payer's (masked) number, the amount against the contract's terms; ranked; "Find contract"
forgives a slip and reads a masked number."""

from __future__ import annotations

import httpx
import psycopg
import pytest

from backoffice.config import Settings
from backoffice.customers import repository as customers
from backoffice.payments import repository, suggest
from backoffice.registry.service import is_valid_account_number
from tests.support.money import MONEY_NOW, Account, confirmation, make_accounts, make_products

pytestmark = pytest.mark.clock(MONEY_NOW)


def swapped_typo(number: str) -> str:
    """The account with one adjacent pair swapped such that the result fails its check digit."""
    for i in range(7):
        if number[i] != number[i + 1]:
            typed = number[:i] + number[i + 1] + number[i] + number[i + 2 :]
            if not is_valid_account_number(typed):
                return typed
    raise AssertionError(f"no failing swap of {number}")


def test_near_accounts_are_one_slip_away_and_pass_the_check_digit() -> None:
    valid = "12345674"
    assert is_valid_account_number(valid)
    typed = swapped_typo(valid)
    near = dict(suggest.near_accounts(typed))
    assert valid in near and "swapped" in near[valid]
    assert all(is_valid_account_number(a) for a in near)
    for account in near:  # each differs by one digit or by one adjacent swap
        diff = [i for i in range(8) if account[i] != typed[i]]
        assert len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1 and account[diff[0]] == typed[diff[1]])
    # For a number failing its check digit, exactly one digit per position makes it pass.
    assert sum("is" in why for why in near.values()) == 8
    assert suggest.near_accounts("1234") == [] and suggest.near_accounts("abcdefgh") == []


def test_the_payers_number_is_read_masked_or_whole() -> None:
    raw = b'{"MSISDN": "2547 ***** 126", "FirstName": "NICHOLAS"}'
    assert suggest.payer_number("mpesa", "NICHOLAS", raw) == ("2547", "126")
    assert suggest.payer_number("momo", "256700000001", None) == ("256700000001", "")
    assert suggest.payer_number("mpesa", "NICHOLAS", b"not json") is None
    assert suggest.payer_number("wing", None, None) is None


def _item(conn: psycopg.Connection, txn: str) -> repository.Unmatched:
    return next(u for u in repository.unmatched(conn, "open") if u.provider_txn_id == txn)


def _give_phone(conn: psycopg.Connection, acct: Account, e164: str) -> None:
    customers.replace_phones(conn, acct.customer_id, [e164])
    conn.commit()


def test_suggestions_rank_the_slip_the_phone_and_the_amount(
    server: str, money_settings: Settings, conn: psycopg.Connection
) -> None:
    _, flexible = make_products(conn)
    meant, by_phone, other = make_accounts(conn, money_settings, flexible, 3, "SUG")
    _give_phone(conn, meant, "+254712345126")  # the payer's masked number "2547 ***** 126" fits
    _give_phone(conn, by_phone, "+254799999126")  # … and this one's too
    pay = f"{server}/payments/mpesa/c2b/confirmation"
    httpx.post(pay, json=confirmation(swapped_typo(meant.number), "700", txn="SLIP1"))  # 20 days at 35 KES
    conn.commit()
    ideas = suggest.suggest(conn, _item(conn, "SLIP1"))
    ranked = [s.candidate.account_number for s in ideas]
    assert ranked[0] == meant.number and by_phone.number in ranked and other.number not in ranked
    best = ideas[0]
    assert best.score == suggest.TRANSPOSED + suggest.PHONE + suggest.AMOUNT
    assert any("swapped" in r for r in best.reasons) and any("exactly 20 days" in r for r in best.reasons)
    # An ended contract is not offered: its money would buy nothing.
    conn.execute("update contracts set state = 'repossessed' where id = %s", (meant.contract_id,))
    assert meant.number not in [s.candidate.account_number for s in suggest.suggest(conn, _item(conn, "SLIP1"))]
    conn.rollback()


def test_find_contract_forgives_a_slip_and_reads_a_masked_number(
    server: str, money_settings: Settings, conn: psycopg.Connection
) -> None:
    _, flexible = make_products(conn)
    (acct,) = make_accounts(conn, money_settings, flexible, 1, "FND")
    _give_phone(conn, acct, "+254711223344")
    typo = acct.number[:-1] + str((int(acct.number[-1]) + 3) % 10)
    assert repository.find_contracts(conn, typo) == []  # the search box alone: exact account numbers only
    assert [h.account_number for h in suggest.find(conn, typo)] == [acct.number]
    assert acct.number in [h.account_number for h in suggest.find(conn, "2547****344")]
    assert acct.number in [h.account_number for h in suggest.find(conn, "+254 711 223 344")]
