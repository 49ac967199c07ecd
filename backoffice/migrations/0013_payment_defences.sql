-- Payment doors hardened: a callback's raw bytes are kept in a transaction of their own before it
-- is processed ('received' until then, 'error' when processing failed, with the reason); a payment
-- above its currency's ceiling or dated out of the plausible window is 'held' for finance; a
-- reversal row is 'reversal' (so a reversal can never be reversed); an unmatched or held item whose
-- payment was reversed is closed as 'reversed'.

alter table payment_inbox drop constraint payment_inbox_status_check;
alter table payment_inbox add constraint payment_inbox_status_check check (status in (
    'received', 'credited', 'unmatched', 'held', 'rejected', 'pending', 'failed', 'reversed', 'reversal', 'error'));
update payment_inbox set status = 'reversal' where status = 'credited' and reason like 'reversal of %';

alter table unmatched_payments drop constraint unmatched_payments_state_check;
alter table unmatched_payments add constraint unmatched_payments_state_check check (
    state in ('open', 'assigned', 'refunded', 'reversed'));
-- Why it waits for finance: no account matched, or the payment was held (amount or date).
alter table unmatched_payments add column kind text not null default 'unmatched' check (kind in ('unmatched', 'held'));
