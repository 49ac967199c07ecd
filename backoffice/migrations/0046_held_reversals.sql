-- A reversal dated outside the payments' time window is held for finance like such a payment (issue 22
-- finding 5: a signed reversal dated 2001-01-01 wrote a ledger row in 2001 and re-locked the unit with
-- a SET_TIME of 995 days). The held item keeps the transaction it would undo; finance's release
-- applies the reversal then, dated that day; it is never credited as money.
alter table unmatched_payments add column reverses text, add column reverses_provider text;
