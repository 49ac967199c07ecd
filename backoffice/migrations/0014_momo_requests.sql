-- MTN MoMo request-to-pay: a payment the platform asked a customer's wallet for. A MoMo callback is
-- credited only for a reference id of ours, for the amount and currency we asked, and only once
-- MTN's own status API confirms it.
create table momo_requests (
    reference_id text primary key,            -- our X-Reference-Id (a UUID)
    contract_id  bigint not null references contracts (id),
    account      text not null,
    amount       bigint not null check (amount > 0),  -- minor units
    currency     char(3) not null,
    payer        text not null,               -- the wallet's MSISDN
    requested_by text not null,
    created_at   timestamptz not null default now()
);
