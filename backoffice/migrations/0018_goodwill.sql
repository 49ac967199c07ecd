-- Goodwill days: free credit the call centre grants (a configured maximum per grant), delivered as an
-- ADD_TIME token like paid days. They are not money: the ledger (and so every KPI) gets no row, and
-- they are kept apart from days_granted, which stays the days that payments bought (so the next
-- payment buys exactly what it would have without the gift).
alter table contracts add column goodwill_days integer not null default 0 check (goodwill_days >= 0);

create table goodwill_grants (
    id             bigserial primary key,
    contract_id    bigint not null references contracts (id),
    token_id       bigint not null unique references tokens (id),
    days           integer not null check (days > 0),
    reason         text not null check (length(btrim(reason)) between 1 and 500),
    granted_by     text not null,
    granted_by_user_id bigint references staff_users (id),
    created_at     timestamptz not null default now()
);
create index goodwill_grants_contract_idx on goodwill_grants (contract_id, id desc);
