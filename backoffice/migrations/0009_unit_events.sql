-- What units report happened to them (protocol DeviceEvent): boot, token entries and their result,
-- tamper, low-voltage disconnect and reconnect, readings lost to a full store-and-forward buffer.
-- A redelivered message adds nothing: the same unit, time, kind and detail is one event.
create table unit_events (
    unit_id      bigint not null references units (id),
    ts           timestamptz not null,
    kind         text not null,
    detail       jsonb not null default '{}',
    received_at  timestamptz not null,
    unique (unit_id, ts, kind, detail)
);
create index unit_events_kind_ts_idx on unit_events (kind, ts);
