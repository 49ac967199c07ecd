-- Money paid to an ended contract (repossessed, written off, returned) buys nothing: it is no longer
-- credited (a ledger row, a commission, no light) but waits for finance as an 'ended-contract' item,
-- assigned to the right contract or refunded (issue 21).
alter table unmatched_payments drop constraint unmatched_payments_kind_check;
alter table unmatched_payments add constraint unmatched_payments_kind_check
    check (kind in ('unmatched', 'held', 'ended-contract'));
