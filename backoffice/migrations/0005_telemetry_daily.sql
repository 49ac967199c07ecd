-- Daily per-unit rollup of telemetry, kept current by the ingest writer in the same transaction as
-- the readings (only readings new to the table are added, so a resent backlog counts once; late
-- readings update their own day). Battery-health and service alerts read this, not raw telemetry.
create table telemetry_daily (
    unit_id          bigint not null references units (id),
    day              date not null,            -- UTC
    energy_in_wh     double precision not null default 0,   -- PV energy
    energy_out_wh    double precision not null default 0,   -- load energy
    min_batt_v       real,
    max_batt_v       real,
    hours_low_soc    real not null default 0,  -- reports below 20 % charge x the nominal 20-minute interval
    max_batt_temp_c  real,
    reports          integer not null default 0,
    primary key (unit_id, day)
);
create index telemetry_daily_day_idx on telemetry_daily (day);
