-- Field operations, part 2: which agent sold which contract, commission rules and payouts, and
-- tickets (opened by the call centre, an alert or a field agent; assigned to a field agent).

create table agent_sales (
    contract_id  bigint primary key references contracts (id),
    agent_id     bigint not null references agents (id),
    recorded_at  timestamptz not null default now()
);
create index agent_sales_agent on agent_sales (agent_id);

-- A share of the deposit, and of each payment in the first N months; all of it clawed back when the
-- contract ends in default (repossessed or written off) within clawback_days of signing.
-- product_id null: the rule for every product without one of its own. Shares in basis points.
create table commission_rules (
    id                 bigserial primary key,
    product_id         bigint unique references products (id),
    deposit_share_bp   integer not null check (deposit_share_bp between 0 and 10000),
    payment_share_bp   integer not null check (payment_share_bp between 0 and 10000),
    payment_months     integer not null check (payment_months between 0 and 120),
    clawback_days      integer not null check (clawback_days between 0 and 3650)
);
create unique index commission_rules_default on commission_rules ((product_id is null)) where product_id is null;
insert into commission_rules (product_id, deposit_share_bp, payment_share_bp, payment_months, clawback_days)
values (null, 1000, 300, 6, 90);

-- Commissions paid out (payroll): what was due to an agent up to a moment, paid once.
create table commission_payouts (
    id          bigserial primary key,
    agent_id    bigint not null references agents (id),
    currency    char(3) not null,
    amount      bigint not null,
    paid_at     timestamptz not null default now(),
    paid_by     text not null,
    note        text
);
create index commission_payouts_agent on commission_payouts (agent_id, paid_at);

create table tickets (
    id           bigserial primary key,
    unit_id      bigint not null references units (id),
    contract_id  bigint references contracts (id),
    customer_id  bigint references customers (id),
    kind         text not null check (kind in ('repair', 'battery_swap', 'installation', 'repossession',
                                               'customer_education')),
    source       text not null check (source in ('call_centre', 'alert', 'field_agent')),
    state        text not null default 'open' check (state in ('open', 'assigned', 'done', 'cancelled')),
    agent_id     bigint references agents (id),
    note         text,
    outcome      text,
    opened_by    text not null,
    opened_at    timestamptz not null default now(),
    due_at       timestamptz not null,
    closed_by    text,
    closed_at    timestamptz,
    check ((state = 'assigned') <= (agent_id is not null)),
    check ((state in ('done', 'cancelled')) = (closed_at is not null))
);
create index tickets_agent on tickets (agent_id, state);
create index tickets_unit on tickets (unit_id, state);
create index tickets_open on tickets (due_at) where state in ('open', 'assigned');

-- The parts a visit used, taken from the agent's stock.
create table ticket_parts (
    ticket_id  bigint not null references tickets (id),
    sku        text not null references parts (sku),
    quantity   integer not null check (quantity > 0),
    primary key (ticket_id, sku)
);

alter table stock_moves add constraint stock_moves_ticket foreign key (ticket_id) references tickets (id);
