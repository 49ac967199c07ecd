-- One definition of a unit's credit end (issue 21; docs/credit_end.md): the instant the unit's light
-- actually stops, as its contract's tokens gave it, in the order of their counts:
--   ADD_TIME  n  issued at t: n days from the later of the previous end and t (a late payer's days
--                              start when the token is issued, not back to back from signing);
--   SET_TIME  n  issued at t: n days from t;
--   DISABLE_PAYG:             never ('infinity');
-- goodwill days are ADD_TIME tokens, so they count. NULL: no token yet, no credit ever.
-- This is what the keypad firmware does with the same tokens (firmware_sim/keypad.py), a day being
-- 86,400 seconds on the unit's clock.
--
-- contracts.credit_until of migration 0031 (signing date + days bought + goodwill days, back to back)
-- was another definition, wrong for anyone who paid late: it goes, so that no query reads it by mistake.
alter table contracts drop column credit_until;  -- and its index

create function credit_end_after(prev timestamptz, kind text, days integer, at timestamptz)
    returns timestamptz language sql immutable parallel safe as $$
    select case kind
               when 'add_time' then greatest(prev, at) + make_interval(hours => 24 * days)
               when 'set_time' then at + make_interval(hours => 24 * days)
               when 'disable_payg' then 'infinity'::timestamptz
               else prev
           end
$$;

-- The fold over a contract's tokens: fold_credit_end(token_type, value_days, created_at order by count).
create aggregate fold_credit_end(text, integer, timestamptz) (sfunc = credit_end_after, stype = timestamptz);

create function contract_credit_end(contract bigint) returns timestamptz language sql stable as $$
    select fold_credit_end(token_type, value_days, created_at order by count, id) from tokens
     where contract_id = contract
$$;

alter table contracts add column credit_end timestamptz;
comment on column contracts.credit_end is
    'when the unit''s light stops as the contract''s tokens gave it (contract_credit_end); infinity: DISABLE_PAYG; '
    'null: no token yet. Kept by the triggers on tokens: never write it.';
create index tokens_contract_count_idx on tokens (contract_id, count);

-- Kept where tokens are written, whoever writes them: a new token is one step from the contract's end
-- (the fold again when it is not the contract's newest by count); a changed or deleted one folds again.
create function tokens_keep_credit_end() returns trigger language plpgsql as $$
begin
    if tg_level = 'ROW' then
        update contracts c
           set credit_end = case
                   when exists (select 1 from tokens t where t.contract_id = new.contract_id and t.count > new.count)
                   then contract_credit_end(new.contract_id)
                   else credit_end_after(c.credit_end, new.token_type, new.value_days, new.created_at)
               end
         where c.id = new.contract_id;
    elsif tg_op = 'UPDATE' then
        update contracts c set credit_end = contract_credit_end(c.id)
         where c.id in (select n.contract_id from changed n join before_change o using (id)
                         where (n.contract_id, n.token_type, n.value_days, n.count, n.created_at)
                               is distinct from (o.contract_id, o.token_type, o.value_days, o.count, o.created_at)
                        union
                        select o.contract_id from changed n join before_change o using (id)
                         where n.contract_id <> o.contract_id);
    else
        update contracts c set credit_end = contract_credit_end(c.id)
         where c.id in (select contract_id from before_change);
    end if;
    return null;
end $$;

create trigger tokens_credit_end_insert after insert on tokens
    for each row execute function tokens_keep_credit_end();
create trigger tokens_credit_end_update after update on tokens
    referencing old table as before_change new table as changed
    for each statement execute function tokens_keep_credit_end();
create trigger tokens_credit_end_delete after delete on tokens
    referencing old table as before_change
    for each statement execute function tokens_keep_credit_end();

update contracts c set credit_end = f.credit_end
  from (select contract_id, fold_credit_end(token_type, value_days, created_at order by count, id) as credit_end
          from tokens group by contract_id) f
 where f.contract_id = c.id;

-- Reminders look for active contracts whose credit ends within a few days.
create index contracts_credit_end_idx on contracts (credit_end) where state = 'active';
