-- Ingest slots (issue 24, ingest/slots.py): the fixed set of MQTT sessions the ingest workers share.
-- Each slot is one persistent broker session ("<group>-slot-<n>") in the shared subscription group;
-- a live worker holds its lease and renews it, a lapsed lease is taken over by another live worker,
-- so that however many workers run (an autoscaler, a kill -9) every session's queue is drained.
create table ingest_slots (
    slot int primary key check (slot >= 0),
    holder text,                                             -- the worker id holding the lease, or null
    lease_until timestamptz not null default '-infinity',    -- lapsed once paygo_now() passes it
    claimed_at timestamptz
);

-- The live workers (a heartbeat with the same lease): each takes its fair share of the slots,
-- ceil(slots / live workers), and gives back the ones above it for a newcomer to claim.
create table ingest_workers (
    worker_id text primary key,
    seen_until timestamptz not null,
    started_at timestamptz not null default paygo_now()
);
