-- A reversal takes back exactly what its payment brought (issue 21). Each completed ledger row says
-- which payment brought it (inbox_id), and a reversal's rows say which rows they undo
-- (reverses_entry_id): a reversal is written type for type against its payment's rows (a reversed
-- deposit is a negative deposit, no longer a negative "payment"), and commissions count a reversed
-- row as of the row it undoes, so a reversal claws back what its payment earned, to the unit.
-- Rows written before this migration have neither link and are read as before.
alter table ledger_entries
    add column inbox_id          bigint references payment_inbox (id),
    add column reverses_entry_id bigint references ledger_entries (id);
create index ledger_entries_inbox_idx on ledger_entries (inbox_id) where inbox_id is not null;
-- A row is undone once.
create unique index ledger_entries_reversed_once on ledger_entries (reverses_entry_id)
    where reverses_entry_id is not null;
