-- Tokens of a history written by `paygo sim backfill`: the simulated customer entered them at the
-- time, so their deliveries are kept for the record but must never be sent now.
alter table outbox drop constraint outbox_state_check;
alter table outbox add constraint outbox_state_check
    check (state in ('pending', 'sent', 'acked', 'failed', 'history'));
