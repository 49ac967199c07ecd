-- The payment a completed ledger row came from, when it came through the payment inbox (issue 21): the
-- unit page lists every payment the ledger holds (deposits taken at signing, a backfilled history,
-- finance's assignments and releases, provider callbacks), with the provider's reference where there is
-- one, and besides them the money of the contract that has not reached the ledger (held, rejected, ...).
-- (Migration 0036 added the same column for reversals; both branches needed it.)
alter table ledger_entries add column if not exists inbox_id bigint references payment_inbox (id);
create index if not exists ledger_entries_inbox_idx on ledger_entries (inbox_id) where inbox_id is not null;

-- Rows written before: a payment's ledger rows and its tokens were written in one transaction (one clock
-- reading), and each token remembers its payment. A payment that bought no token stays without a link.
update ledger_entries e set inbox_id = t.inbox_id
  from tokens t
 where e.inbox_id is null and e.status = 'completed' and t.inbox_id is not null
   and t.contract_id = e.contract_id and t.created_at = e.created_at;
