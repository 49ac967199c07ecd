-- The loan tape of kpi PERFORM.md §4 (one CSV row per unit acquired by the as-of date), stored
-- beside the KPI snapshots of the same date and replaced with them in one transaction. Kept as
-- gzip of the CSV text: a million-contract tape is ~150 MB of text and ~20 MB compressed.
create table kpi_loan_tapes (
    as_of        date primary key,
    currency     char(3) not null,
    units        integer not null,        -- rows in the tape
    tape_gz      bytea not null,          -- gzip of the CSV (header included)
    computed_at  timestamptz not null default paygo_now()
);
