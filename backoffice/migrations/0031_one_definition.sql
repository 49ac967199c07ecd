-- One definition each of two things many queries read (reminders, finance's search, the Metrics
-- answer, tickets, agents, the credit service):
-- * until when a contract's credit lasts: the days payments bought plus goodwill days, from signing;
-- * the number a customer's SMS go to: their first number (position 0).
alter table contracts
    add column credit_until date generated always as (signed_on + days_granted + goodwill_days) stored;
drop index contracts_credit_until_idx;
create index contracts_credit_until_idx on contracts (credit_until) where state = 'active';

create function sms_phone(customer bigint) returns text language sql stable as $$
    select e164 from customer_phones where customer_id = customer order by position, id limit 1
$$;
