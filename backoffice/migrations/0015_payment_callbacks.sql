-- Every MoMo callback's raw bytes, kept in a transaction of their own before it is processed: a
-- MoMo payment's inbox row is our request (made before MTN was asked), so a callback for it, and any
-- later one, would otherwise keep no bytes of its own. ``outcome`` says what became of it.
create table payment_callbacks (
    id          bigserial primary key,
    inbox_id    bigint references payment_inbox (id),
    provider    text not null,
    reference   text not null,
    received_at timestamptz not null default now(),
    raw         bytea not null,
    outcome     text
);
create index payment_callbacks_inbox on payment_callbacks (inbox_id);
