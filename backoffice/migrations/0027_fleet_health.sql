-- Fleet health (issue 16): what the nightly health job derives from each day's readings, the alerts it
-- raises, each out-of-credit unit's collections class and the call centre's outreach queue.

-- One row per unit and day, from that day's readings as received by the end of the day (a reading
-- that waited out a GSM outage counts on the day it arrived for `received`, never twice).
create table unit_health_daily (
    unit_id        bigint not null references units (id),
    day            date not null,
    received       integer not null default 0,   -- readings of the day received by the job's run
    capacity_ah    real,     -- estimated usable capacity (coulomb count of the night's discharge), or null
    soh            real,     -- state of health: the estimate, smoothed, / nameplate (null until known)
    min_soc        real,
    max_soc        real,
    end_soc        real,     -- the day's last reading
    hours_hot      real not null default 0,      -- hours above the over-temperature threshold
    hours_locked   real not null default 0,      -- hours out of credit (the firmware's lock)
    hours_cut      real not null default 0,      -- hours at or below the low-voltage cut-off charge
    hours_full     real not null default 0,      -- hours at full charge (a covered panel fills it late)
    last_rssi      smallint,
    primary key (unit_id, day)
);
create index unit_health_daily_day_idx on unit_health_daily (day);

create table health_alerts (
    id               bigserial primary key,
    unit_id          bigint not null references units (id),
    kind             text not null check (kind in ('battery_degrading', 'chronic_deep_discharge',
                         'over_temperature', 'pv_underperformance', 'offline', 'tamper', 'usage_drop',
                         'locked_too_long', 'system_too_small')),
    level            smallint not null default 1,      -- escalation (locked too long: 3, 7, 30 days)
    opened_on        date not null,                    -- the day whose data raised it
    last_seen_on     date not null,
    resolved_on      date,                             -- the condition cleared (automatic)
    evidence         jsonb not null,                   -- the figures the rule saw, latest run
    acknowledged_at  timestamptz,
    acknowledged_by  text,
    created_at       timestamptz not null default now()
);
-- At most one open alert per unit and kind.
create unique index health_alerts_open_idx on health_alerts (unit_id, kind) where resolved_on is null;
create index health_alerts_open_kind_idx on health_alerts (kind, opened_on) where resolved_on is null;

-- Every unit out of credit, classified from its telemetry (rebuilt by each run).
create table unit_collections (
    unit_id      bigint primary key references units (id),
    class        text not null check (class in ('cant_use', 'not_using', 'using_without_paying')),
    since        date not null,            -- out of credit since
    as_of        date not null,
    evidence     jsonb not null
);

-- The call centre's outreach queue (rebuilt by each run; the highest priority first).
create table health_outreach (
    unit_id           bigint primary key references units (id),
    priority          integer not null,
    reason            text not null,       -- an alert kind or a collections class
    suggested_action  text not null,
    script_hint       text not null,
    as_of             date not null
);
create index health_outreach_priority_idx on health_outreach (priority desc);
