-- SMS to customers (issue 14): the outbox carries messages that are no token's (reminders), each
-- SMS says what it is (`kind`, the template it was written from) and for which contract (the
-- SMS log of a unit), and a reminder is sent once per contract, credit period and offset.

alter table outbox alter column token_id drop not null;
alter table outbox add column kind text not null default 'token'
    check (kind in ('token', 'receipt', 'paid_off', 'token_resend', 'reminder', 'command'));
alter table outbox add column contract_id bigint references contracts (id);
update outbox o set contract_id = t.contract_id from tokens t where t.id = o.token_id;
update outbox set kind = 'command' where channel = 'mqtt';
create index outbox_contract_idx on outbox (contract_id, id);

-- One reminder per contract, credit period (the date its credit ends) and offset (days before).
create table sms_reminders (
    contract_id   bigint not null references contracts (id),
    credit_until  date not null,
    days_before   integer not null check (days_before > 0),
    outbox_id     bigint references outbox (id),
    created_at    timestamptz not null default now(),
    primary key (contract_id, credit_until, days_before)
);
-- The reminder job's daily question: whose credit ends within the next few days?
create index contracts_credit_until_idx on contracts ((signed_on + days_granted + goodwill_days)) where state = 'active';
