-- Initial schema: the registry, the ledger and telemetry that the walking skeleton needs.
-- Money is integer minor units (ISO 4217) with the currency on every row.

create table products (
    id                        bigserial primary key,
    code                      text not null unique,   -- the KPI ledger's product_type
    name                      text not null,
    business_model            text not null check (business_model in ('asset_finance', 'flexible')),
    currency                  char(3) not null,
    hardware_cost             bigint not null default 0,
    transport_cost            bigint not null default 0,
    import_tax                bigint not null default 0,
    insurance_cost            bigint not null default 0,
    installation_cost         bigint not null default 0,
    lighting_global_certified boolean not null default false,
    -- asset finance: a deposit, then instalment_count instalments every instalment_period_days
    deposit_amount            bigint,
    instalment_amount         bigint,
    instalment_count          integer,
    instalment_period_days    integer,
    -- flexible PAYG
    price_per_day             bigint,
    price_to_own              bigint,
    contract_days             integer,
    deposit_days              integer,
    -- the kit, for the simulator and battery-health rules
    panel_wp                  integer not null default 50,
    battery_ah                numeric(8, 2) not null default 20,
    battery_chemistry         text not null default 'lifepo4' check (battery_chemistry in ('lead_acid', 'lifepo4')),
    created_at                timestamptz not null default now()
);

create table customers (
    id          bigserial primary key,
    name        text not null,
    phone       text,
    village     text,
    district    text,
    latitude    double precision,
    longitude   double precision,
    created_at  timestamptz not null default now()
);

create table units (
    id                 bigserial primary key,
    serial             text not null unique,
    product_id         bigint not null references products (id),
    state              text not null default 'in_stock'
                       check (state in ('in_stock', 'installed', 'returned', 'retired')),
    openpaygo_key_enc  bytea,            -- Fernet-encrypted hex key, see backoffice/crypto.py
    starting_code      bigint,
    token_count        integer not null default 1,
    latitude           double precision,
    longitude          double precision,
    installed_at       timestamptz,
    created_at         timestamptz not null default now()
);

create table contracts (
    id              bigserial primary key,
    account_number  text not null unique,   -- customer-facing, with a check digit
    customer_id     bigint not null references customers (id),
    unit_id         bigint not null references units (id),
    product_id      bigint not null references products (id),
    state           text not null default 'active'
                    check (state in ('active', 'paid_off', 'returned', 'repossessed', 'written_off')),
    currency        char(3) not null,
    signed_on       date not null,
    created_at      timestamptz not null default now()
);
create index contracts_customer_idx on contracts (customer_id);
create index contracts_unit_idx on contracts (unit_id);

-- Expected and completed rows exactly in the shape of the KPI guide's Box 1.
create table ledger_entries (
    id           bigserial primary key,
    contract_id  bigint not null references contracts (id),
    entry_date   date not null,
    status       text not null check (status in ('expected', 'completed')),
    type         text not null check (type in ('deposit', 'payment', 'maintenance_scheduled',
                                               'maintenance_unscheduled', 'late_fee', 'return')),
    amount       bigint not null,          -- minor units; negative for refunds
    currency     char(3) not null,
    note         text,
    created_at   timestamptz not null default now()
);
create index ledger_entries_contract_idx on ledger_entries (contract_id, entry_date);
create index ledger_entries_date_idx on ledger_entries (entry_date);

-- Telemetry: one row per reading. A hypertable with TimescaleDB, native range partitions
-- (weekly, created ahead by telemetry_ensure_partitions, plus a default partition so that a
-- reading outside every partition never fails a batch) on plain PostgreSQL.
do $$
declare
    cols text := $c$
        unit_id      bigint not null,
        ts           timestamptz not null,
        seq          bigint not null,
        received_at  timestamptz not null default now(),
        batt_v       real,
        batt_a       real,
        soc          real,
        batt_temp_c  real,
        pv_v         real,
        pv_w         real,
        pv_wh        real,
        load_wh      real,
        credit_s     bigint,
        locked       boolean,
        rssi         smallint,
        fw           text,
        primary key (unit_id, ts, seq)
    $c$;
begin
    if exists (select 1 from pg_extension where extname = 'timescaledb') then
        execute format('create table telemetry (%s)', cols);
        execute $x$select create_hypertable('telemetry', 'ts', chunk_time_interval => interval '7 days')$x$;
    else
        execute format('create table telemetry (%s) partition by range (ts)', cols);
        execute 'create table telemetry_default partition of telemetry default';
    end if;
end $$;

create or replace function telemetry_ensure_partitions(p_from timestamptz, p_to timestamptz)
returns integer language plpgsql as $$
declare
    w        timestamptz := date_trunc('week', p_from at time zone 'UTC') at time zone 'UTC';
    part     text;
    created  integer := 0;
begin
    if exists (select 1 from pg_extension where extname = 'timescaledb') then
        return 0;  -- TimescaleDB creates its chunks itself
    end if;
    while w < p_to loop
        part := format('telemetry_p%s', to_char(w at time zone 'UTC', 'YYYYMMDD'));
        if to_regclass(part) is null then
            -- Rows that landed in the default partition for this week move into the new one.
            create temp table if not exists telemetry_move (like telemetry) on commit drop;
            with moved as (
                delete from telemetry_default where ts >= w and ts < w + interval '7 days' returning *
            )
            insert into telemetry_move select * from moved;
            execute format('create table %I partition of telemetry for values from (%L) to (%L)',
                           part, w, w + interval '7 days');
            insert into telemetry select * from telemetry_move;
            truncate telemetry_move;
            created := created + 1;
        end if;
        w := w + interval '7 days';
    end loop;
    return created;
end $$;

select telemetry_ensure_partitions(now() - interval '12 weeks', now() + interval '4 weeks');

-- The newest reading of each unit, kept by the ingest batch, for fast look-ups.
create table unit_latest (
    unit_id      bigint primary key references units (id),
    ts           timestamptz not null,
    seq          bigint not null,
    received_at  timestamptz not null,
    batt_v       real,
    soc          real,
    batt_temp_c  real,
    pv_w         real,
    credit_s     bigint,
    locked       boolean,
    rssi         smallint,
    fw           text
);

-- Dead letters: every device message the platform refused, with its raw bytes and the reason.
create table ingest_rejects (
    id           bigserial primary key,
    received_at  timestamptz not null default now(),
    topic        text not null,
    serial       text,
    reason       text not null,
    payload      bytea not null
);
create index ingest_rejects_received_idx on ingest_rejects (received_at);
