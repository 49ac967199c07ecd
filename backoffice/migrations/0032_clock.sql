-- The platform's clock in the database (backoffice/clock.py). paygo_now() is now() moved by the
-- offset each connection states in paygo.clock_offset: zero in production, the distance to PAYGO_NOW
-- (or a test's pinned instant) elsewhere, so that defaults and queries agree with the Python clock.
create or replace function paygo_now() returns timestamptz
    language sql stable parallel safe
    as $$ select now() + coalesce(nullif(current_setting('paygo.clock_offset', true), ''), '0')::interval $$;

-- Every column that defaulted to the machine's now() takes the platform's instead.
do $$
declare c record;
begin
    for c in
        select n.nspname, cl.relname, a.attname
          from pg_attrdef d
          join pg_attribute a on a.attrelid = d.adrelid and a.attnum = d.adnum
          join pg_class cl on cl.oid = d.adrelid
          join pg_namespace n on n.oid = cl.relnamespace
         where pg_get_expr(d.adbin, d.adrelid) = 'now()' and n.nspname = current_schema()
    loop
        execute format('alter table %I.%I alter column %I set default paygo_now()', c.nspname, c.relname, c.attname);
    end loop;
end $$;

-- A contract's end is stamped on the platform's clock too.
create or replace function contracts_ended_at() returns trigger language plpgsql as $$
begin
    if old.state = 'active' and new.state <> 'active' and new.ended_at is null then
        new.ended_at := paygo_now();
    end if;
    return new;
end $$;
