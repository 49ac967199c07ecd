-- OpenPAYGO Metrics replay protection: the last request count and timestamp accepted per unit; a
-- request must carry a strictly higher one.
create table metrics_state (
    unit_id                 bigint primary key references units (id),
    last_request_count      bigint,
    last_request_timestamp  bigint,
    updated_at              timestamptz not null default now()
);
