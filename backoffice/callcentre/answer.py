"""The unit page's first screen (docs/unit_page.md): the answer to a caller's "why is my light off?" —
the unit's state, the reason with its date, and the one or two actions that fit. A pure function of the
page's data, so that tests call it without a server."""

from __future__ import annotations

from datetime import datetime, timedelta

from backoffice.callcentre.schemas import Answer, Reason, UnitPage

# Three 20-minute reports missed: the unit is offline even when its last will has not told the broker yet.
OFFLINE_AFTER = timedelta(hours=1)
# A tamper event the unit sent lately counts before the nightly health job has raised its alert.
TAMPER_EVENT_DAYS = 7
# The ticket an open fault alert calls for (the health domain opens the same for its technician alerts).
TICKET_OF_ALERT = {"battery_degrading": "battery_swap"}


def _fmt_days(seconds: float) -> str:
    return f"{seconds / 86400:.1f} d"


def answer(page: UnitPage, now: datetime) -> Answer:
    """State (tampered, locked, faulty, offline, unlocked; no_contract), its headline and date, every
    reason that applies, and the actions that fit, best first."""
    s, k = page.status, page.contract
    if k is None:
        return Answer(state="no_contract", headline="No contract: the unit is not sold to anyone", since=None,
                      reasons=[], actions=[])  # fmt: skip
    reasons: list[tuple[str, Reason]] = []
    tamper = next((a for a in page.alerts if a.kind == "tamper"), None)
    event = next((e for e in page.events if e.kind == "tamper" and now - e.ts <= timedelta(days=TAMPER_EVENT_DAYS)),
                 None)  # fmt: skip
    if tamper is not None:
        reasons.append(("tampered", Reason(text=f"Tampered: tamper alert #{tamper.id} since", since=tamper.opened_on)))
    elif event is not None:
        reasons.append(("tampered", Reason(text="Tampered: the unit reported it was opened at", since=event.ts)))
    if s.locked:
        paid_ahead = k.credit_end is not None and k.credit_end > now
        if k.unlocked_for_good or paid_ahead:
            until = "for good" if k.unlocked_for_good else f"until {k.paid_until}"
            text = f"Locked although paid {until}: the newest token has not reached the unit. Locked since"
            since = s.credit_until or s.last_ts
        else:
            # When the contract's tokens gave out (docs/credit_end.md), not when the unit last said so.
            text, since = "Locked: out of credit since", k.credit_end or s.credit_until or s.last_ts
        reasons.append(("locked", Reason(text=text, since=since)))
    faults = [a for a in page.alerts if a.fault and a.kind != "tamper"]
    for a in faults:
        reasons.append(("faulty", Reason(text=f"Fault: {a.kind.replace('_', ' ')} alert #{a.id} since",
                                         since=a.opened_on)))  # fmt: skip
    silent = s.last_received_at is None or now - s.last_received_at > OFFLINE_AFTER
    if s.online is False or (s.last_ts is not None and silent):
        reasons.append(("offline", Reason(text="Offline: no report since", since=s.last_ts or s.online_since)))
    elif s.last_ts is None:
        reasons.append(("offline", Reason(text="Never reported yet")))
    if not any(state in ("locked", "tampered") for state, _ in reasons):
        if k.unlocked_for_good:
            reasons.append(("unlocked", Reason(text="Light on: paid off, unlocked for good")))
        elif s.locked is False:
            left = f" ({_fmt_days(s.credit_s)} left)" if s.credit_s is not None else ""
            reasons.append(("unlocked", Reason(text=f"Light on{left}: credit until", since=s.credit_until)))
    order = ["tampered", "locked", "faulty", "offline", "unlocked"]
    reasons.sort(key=lambda r: order.index(r[0]))
    if not reasons:
        return Answer(state="unlocked", headline="Not known yet: no report and no token acknowledged", since=None,
                      reasons=[], actions=["note"])  # fmt: skip
    state, first = reasons[0]
    return Answer(state=state, headline=first.text, since=first.since, reasons=[r for _, r in reasons],  # type: ignore[arg-type]
                  actions=_actions(page, state, now))  # fmt: skip


def _actions(page: UnitPage, state: str, now: datetime) -> list[str]:
    """The one or two actions that fit the state, best first."""
    k, tokens = page.contract, page.tokens
    assert k is not None
    if state == "tampered":
        return ["ticket:repair", "note"]
    if state == "locked":
        paid_ahead = k.unlocked_for_good or (k.credit_end is not None and k.credit_end > now)
        if paid_ahead and tokens:
            return ["resend", "ticket:repair"]
        return ["resend", "goodwill"] if tokens else ["goodwill"]
    if state == "faulty":
        fault = next(a for a in page.alerts if a.fault and a.kind != "tamper")
        return [f"ticket:{TICKET_OF_ALERT.get(fault.kind, 'repair')}", "goodwill"]
    if state == "offline":
        return ["resend", "ticket:repair"] if tokens else ["ticket:repair"]
    return ["note"]
