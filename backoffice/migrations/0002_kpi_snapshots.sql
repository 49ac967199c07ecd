-- Portfolio KPI snapshots (kpi/SPEC.md §4), one row per as-of date and segment. A snapshot is
-- replaced as a whole in one transaction, so an as-of date has all its segments or none.
create table kpi_snapshots (
    as_of          date not null,
    segment        text not null,           -- 'all' or a product type
    currency       char(3) not null,
    result         jsonb not null,          -- the SPEC.md §4 object
    distributions  jsonb,                   -- histograms (amount ahead/behind, 30-day revenue per unit)
    units          integer not null,        -- units in the ledger when it was taken
    computed_at    timestamptz not null default now(),
    primary key (as_of, segment)
);
