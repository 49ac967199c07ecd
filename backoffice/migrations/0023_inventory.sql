-- Field operations, part 1: the unit's lifecycle, stock locations (warehouses and agents), where each
-- unit is (one row per unit: it can never be in two places), the append-only history of stock moves,
-- and spare parts counted per location by SKU (never below zero).

-- The lifecycle. 'returned' and 'retired' stay valid for rows and code written before it.
alter table units drop constraint units_state_check;
alter table units add constraint units_state_check check (state in (
    'in_stock', 'with_agent', 'installed', 'paid_off', 'repossessed', 'refurbishing', 'written_off',
    'returned', 'retired'));

-- Sales and field agents: a staff login (role field_agent) and the villages or areas they serve.
create table agents (
    id          bigserial primary key,
    user_id     bigint unique references staff_users (id),
    code        text not null unique check (code ~ '^[A-Za-z0-9_-]{1,32}$'),
    name        text not null check (length(name) between 1 and 200),
    kind        text not null default 'field' check (kind in ('sales', 'field', 'sales_and_field')),
    phone       text,
    active      boolean not null default true,
    created_at  timestamptz not null default now()
);

create table agent_areas (
    agent_id  bigint not null references agents (id),
    village   text not null,
    district  text not null default '',
    primary key (agent_id, village, district)
);

-- A warehouse, or the stock an agent carries (one location per agent).
create table stock_locations (
    id          bigserial primary key,
    kind        text not null check (kind in ('warehouse', 'agent')),
    name        text not null,
    agent_id    bigint unique references agents (id),
    created_at  timestamptz not null default now(),
    check ((kind = 'agent') = (agent_id is not null))
);
insert into stock_locations (kind, name) values ('warehouse', 'Main warehouse');

-- Where each unit is now: the primary key makes two places impossible. 'stock' is a location (a
-- warehouse or an agent), 'customer' a customer's home, 'gone' written off or retired, 'unknown' an
-- installed unit with no contract to say whose it is. A move updates this row only where it still
-- says what the mover saw (compare and set), in the transaction that appends the move.
create table unit_locations (
    unit_id      bigint primary key references units (id),
    place        text not null check (place in ('stock', 'customer', 'gone', 'unknown')),
    location_id  bigint references stock_locations (id),
    customer_id  bigint references customers (id),
    since        timestamptz not null default now(),
    check ((place = 'stock') = (location_id is not null)),
    check ((place = 'customer') = (customer_id is not null))
);
create index unit_locations_location on unit_locations (location_id) where location_id is not null;
create index unit_locations_customer on unit_locations (customer_id) where customer_id is not null;

-- Spare parts (batteries, panels, lamps) by SKU, counted per location.
create table parts (
    sku         text primary key check (sku ~ '^[A-Za-z0-9._-]{1,40}$'),
    name        text not null,
    created_at  timestamptz not null default now()
);
create table part_stock (
    location_id  bigint not null references stock_locations (id),
    sku          text not null references parts (sku),
    quantity     integer not null check (quantity >= 0),
    primary key (location_id, sku)
);

-- Every move of a unit or of parts: who, when, from, to, why. Append-only.
create table stock_moves (
    id                 bigserial primary key,
    at                 timestamptz not null default now(),
    actor              text not null,
    unit_id            bigint references units (id),
    sku                text references parts (sku),
    quantity           integer check (quantity > 0),
    from_place         text,
    from_location_id   bigint references stock_locations (id),
    from_customer_id   bigint references customers (id),
    to_place           text not null,
    to_location_id     bigint references stock_locations (id),
    to_customer_id     bigint references customers (id),
    state_before       text,
    state_after        text,
    reason             text not null,
    ticket_id          bigint,
    check ((unit_id is null) = (sku is not null) and (sku is null) = (quantity is null))
);
create index stock_moves_unit on stock_moves (unit_id, id) where unit_id is not null;

create function stock_moves_are_append_only() returns trigger language plpgsql as $$
begin
    raise exception 'stock_moves is append-only: % refused', tg_op using errcode = 'insufficient_privilege';
end $$;
create trigger stock_moves_no_update_or_delete before update or delete on stock_moves
    for each row execute function stock_moves_are_append_only();

-- The units that exist already: in stock at the main warehouse, installed at their contract's customer.
insert into unit_locations (unit_id, place, location_id, customer_id)
select u.id,
       case when u.state = 'in_stock' then 'stock'
            when u.state in ('retired', 'written_off') then 'gone'
            when c.customer_id is not null then 'customer' else 'unknown' end,
       case when u.state = 'in_stock' then (select min(id) from stock_locations) end,
       case when u.state not in ('in_stock', 'retired', 'written_off') then c.customer_id end
  from units u
  left join lateral (select customer_id from contracts c where c.unit_id = u.id
                      order by c.signed_on desc, c.id desc limit 1) c on true;

-- When a contract stops being active: when it ended, for commission claw-backs (contracts/service.py
-- ends contracts; this keeps the date without a change there).
alter table contracts add column ended_at timestamptz;
create function contracts_ended_at() returns trigger language plpgsql as $$
begin
    if old.state = 'active' and new.state <> 'active' and new.ended_at is null then
        new.ended_at := now();
    end if;
    return new;
end $$;
create trigger contracts_set_ended_at before update of state on contracts
    for each row execute function contracts_ended_at();
