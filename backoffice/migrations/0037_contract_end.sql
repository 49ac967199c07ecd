-- The day a contract ended is the day it really ended (issue 21): a contract paid off, taken below
-- its price again by a reversal (active again) and then repossessed kept its pay-off date, which the
-- commission claw-back read. Active again means not ended; leaving 'active' or 'paid_off' for
-- another state stamps the platform's clock. A statement that sets ended_at itself is obeyed.
create or replace function contracts_ended_at() returns trigger language plpgsql as $$
begin
    if new.ended_at is distinct from old.ended_at then
        return new;
    end if;
    if new.state = 'active' then
        new.ended_at := null;
    elsif new.state is distinct from old.state and old.state in ('active', 'paid_off') then
        new.ended_at := paygo_now();
    end if;
    return new;
end $$;

-- The rows the old trigger left wrong: running contracts carry no end, and an ended contract ends
-- when the platform ended it (the audit trail of contracts.service.end_contract), if that is later.
update contracts set ended_at = null where state = 'active' and ended_at is not null;
update contracts c set ended_at = a.at
  from (select entity_id, max(at) as at from audit_log
         where entity = 'contract' and action in ('contract-returned', 'contract-repossessed', 'contract-written_off')
         group by entity_id) a
 where a.entity_id = c.account_number and c.state in ('returned', 'repossessed', 'written_off')
   and (c.ended_at is null or a.at > c.ended_at);
