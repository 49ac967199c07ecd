-- The money loop: payment intake (raw first, unique per provider transaction), credit bought so far,
-- OpenPAYGO tokens and their delivery outbox.

-- Credit: what the contract has been paid and how many days of light that has bought. The days a
-- payment buys are always recomputed from the totals, so a fraction of a day is never lost.
alter table contracts
    add column paid_total   bigint not null default 0,   -- minor units credited (deposit, payments, reversals)
    add column days_granted integer not null default 0;  -- days of light issued as tokens so far


-- Every provider callback, stored raw before anything else; a repeat finds the first one.
create table payment_inbox (
    id               bigserial primary key,
    provider         text not null,        -- mpesa, momo, manual, statement, or a webhook provider
    provider_txn_id  text not null,        -- the provider's idempotency key (M-Pesa TransID, ...)
    received_at      timestamptz not null default now(),
    raw              bytea not null,
    status           text not null check (status in ('credited', 'unmatched', 'rejected', 'pending',
                                                     'failed', 'reversed')),
    reason           text,                 -- why it was rejected or left unmatched
    response         jsonb,                -- the answer given, repeated to every duplicate
    account          text,
    amount           bigint,               -- minor units
    currency         char(3),
    paid_at          timestamptz,
    payer            text,
    contract_id      bigint references contracts (id),
    unique (provider, provider_txn_id)
);
create index payment_inbox_status_idx on payment_inbox (status, received_at);

-- M-Pesa validation requests (not payments: the confirmation that follows carries the money).
create table payment_validations (
    id           bigserial primary key,
    provider     text not null,
    received_at  timestamptz not null default now(),
    raw          bytea not null,
    result_code  text not null,
    reason       text
);

-- Money that arrived for no known account: finance assigns it to a contract or refunds it.
create table unmatched_payments (
    id           bigserial primary key,
    inbox_id     bigint not null unique references payment_inbox (id),
    state        text not null default 'open' check (state in ('open', 'assigned', 'refunded')),
    contract_id  bigint references contracts (id),
    resolved_by  text,
    resolved_at  timestamptz,
    note         text
);

create table payment_audit (
    id         bigserial primary key,
    at         timestamptz not null default now(),
    actor      text not null,
    action     text not null,
    inbox_id   bigint references payment_inbox (id),
    detail     jsonb not null default '{}'
);

-- OpenPAYGO tokens. The count is the unit's token counter after this token; unique per unit, so a
-- count can never be issued twice even if a lock were forgotten.
create table tokens (
    id           bigserial primary key,
    unit_id      bigint not null references units (id),
    contract_id  bigint not null references contracts (id),
    inbox_id     bigint references payment_inbox (id),
    token_type   text not null check (token_type in ('add_time', 'set_time', 'disable_payg')),
    value_days   integer not null,
    count        integer not null,
    token        text not null,            -- 9 digits: leading zeros are real
    created_at   timestamptz not null default now(),
    unique (unit_id, count)
);
create index tokens_contract_idx on tokens (contract_id, created_at);

-- Deliveries, written in the same transaction as the token, sent and retried by the dispatcher.
create table outbox (
    id               bigserial primary key,
    channel          text not null check (channel in ('sms', 'mqtt')),
    token_id         bigint not null references tokens (id),
    recipient        text not null,        -- phone number or unit serial
    body             text not null,
    state            text not null default 'pending' check (state in ('pending', 'sent', 'acked', 'failed')),
    attempts         integer not null default 0,
    next_attempt_at  timestamptz not null default now(),
    last_error       text,
    created_at       timestamptz not null default now(),
    sent_at          timestamptz,
    acked_at         timestamptz
);
create index outbox_due_idx on outbox (next_attempt_at) where state in ('pending', 'sent');

-- The development SMS gateway's record of what it "sent" (viewable in the UI and the API).
create table sms_messages (
    id          bigserial primary key,
    outbox_id   bigint references outbox (id),
    to_number   text not null,
    body        text not null,
    sent_at     timestamptz not null default now()
);
