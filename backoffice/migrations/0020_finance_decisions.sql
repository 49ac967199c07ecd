-- Finance's decisions on the money that waits for it (issue 14): a held payment can be released
-- (credited to its own account as if it had been received), and a refund is a decision written
-- down in `refunds` ('to_refund'), carried out outside the platform (no provider reversal API is
-- called) and then marked 'refunded'. An item leaves 'open' once only: the services claim it with
-- `update ... where state = 'open'`, so a second click, or a concurrent one, changes nothing.

alter table unmatched_payments drop constraint unmatched_payments_state_check;
alter table unmatched_payments add constraint unmatched_payments_state_check check (
    state in ('open', 'assigned', 'released', 'refunded', 'reversed'));
create index unmatched_payments_open_idx on unmatched_payments (kind, id) where state = 'open';

-- A payment whose money finance decided to send back: never credited, never reversed after that.
alter table payment_inbox drop constraint payment_inbox_status_check;
alter table payment_inbox add constraint payment_inbox_status_check check (status in (
    'received', 'credited', 'unmatched', 'held', 'rejected', 'pending', 'failed', 'reversed', 'reversal', 'error',
    'refunded'));

create table refunds (
    id            bigserial primary key,
    unmatched_id  bigint not null unique references unmatched_payments (id),  -- one refund per item
    inbox_id      bigint not null unique references payment_inbox (id),
    amount        bigint,                 -- minor units, as the payment arrived
    currency      char(3),
    payer         text,                   -- whom to send it back to (the provider's payer field)
    reason        text not null check (length(btrim(reason)) > 0),
    state         text not null default 'to_refund' check (state in ('to_refund', 'refunded')),
    decided_by    text not null,
    decided_at    timestamptz not null default now(),
    refunded_by   text,
    refunded_at   timestamptz,
    reference     text                    -- the bank or wallet reference of the money sent back
);
create index refunds_to_do_idx on refunds (decided_at) where state = 'to_refund';
