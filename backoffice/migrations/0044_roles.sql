-- Least privilege in the database (issue 22 finding 2): the owner role (paygo_owner) owns every
-- object and runs the migrations; each service logs in as its own role (paygo_web, paygo_ingest,
-- paygo_worker, paygo_delivery, members of paygo_service) with only grants, never ownership, so no
-- service can disable a trigger, change session_replication_role or rewrite an append-only table.
-- The roles are created by a superuser beforehand (backoffice/database_roles.sql: `paygo db roles`).

do $$
begin
    if (select count(*) from pg_roles where rolname in ('paygo_owner', 'paygo_service', 'paygo_web',
        'paygo_ingest', 'paygo_worker', 'paygo_delivery')) < 6 then
        raise exception 'the platform''s database roles are missing: run `paygo db roles | psql` as a superuser '
                        'first (deploy/database.md)';
    end if;
end $$;

-- What every service may do, on every table: read and write rows. Tables that later migrations create
-- get the same through the owner's default privileges; an append-only table must revoke as below.
grant select, insert, update, delete, truncate on all tables in schema public to paygo_service;
grant usage, select on all sequences in schema public to paygo_service;
alter default privileges for role paygo_owner in schema public
    grant select, insert, update, delete, truncate on tables to paygo_service;
alter default privileges for role paygo_owner in schema public grant usage, select on sequences to paygo_service;

-- Append-only tables: rows are added, never changed, deleted or truncated, refused by the grants and,
-- should a grant ever slip, by triggers.
revoke update, delete, truncate on audit_log, stock_moves, ledger_entries from paygo_service;
create function ledger_entries_are_append_only() returns trigger language plpgsql as $$
begin
    raise exception 'ledger_entries is append-only: % refused', tg_op using errcode = 'insufficient_privilege';
end $$;
create trigger ledger_entries_no_update_or_delete before update or delete on ledger_entries
    for each row execute function ledger_entries_are_append_only();
create trigger ledger_entries_no_truncate before truncate on ledger_entries
    for each statement execute function ledger_entries_are_append_only();
create trigger stock_moves_no_truncate before truncate on stock_moves
    for each statement execute function stock_moves_are_append_only();

-- Staff logins (password hashes, session and token digests) are the web app's alone; the other
-- services see who a user is, not their secrets.
revoke all on staff_users, staff_sessions, api_tokens, login_failures from paygo_service;
grant select, insert, update, delete on staff_users, staff_sessions, api_tokens, login_failures to paygo_web;
grant select (id, username, roles, disabled_at) on staff_users to paygo_service;
-- The device API's integration doors (in the ingest process) take API tokens: it reads their row (the
-- digest it was given is all it looks up) and notes their last use.
grant select on api_tokens to paygo_ingest;
grant update (last_used_at) on api_tokens to paygo_ingest;

-- New telemetry partitions are created when readings arrive (ingest, backfill): as the owner, so that
-- they are the owner's and no service needs the right to create tables.
alter function telemetry_ensure_partitions(timestamptz, timestamptz)
    security definer set search_path = public, pg_temp;
revoke execute on function telemetry_ensure_partitions(timestamptz, timestamptz) from public;
grant execute on function telemetry_ensure_partitions(timestamptz, timestamptz) to paygo_service, paygo_owner;

-- Last: the database and every table, view, sequence and function of the schema become the owner's
-- (an existing database, migrated as a superuser until now: that needs a superuser, once).
create or replace function paygo_adopt_objects() returns integer language plpgsql as $$
declare
    o record;
    n integer := 0;
begin
    if not (select rolsuper from pg_roles where rolname = current_user) and (
        exists (select from pg_class c join pg_namespace s on s.oid = c.relnamespace
                 where s.nspname = 'public' and c.relowner <> 'paygo_owner'::regrole)
        or exists (select from pg_proc p join pg_namespace s on s.oid = p.pronamespace
                    where s.nspname = 'public' and p.proowner <> 'paygo_owner'::regrole
                      and not exists (select from pg_depend d where d.classid = 'pg_proc'::regclass
                                       and d.objid = p.oid and d.deptype = 'e'))) then
        raise exception 'objects of this database belong to another role than paygo_owner: run this migration '
                        'once as a superuser (deploy/database.md), then every later one as paygo_owner';
    end if;
    if (select datdba from pg_database where datname = current_database()) <> 'paygo_owner'::regrole then
        execute format('alter database %I owner to paygo_owner', current_database());
    end if;
    for o in
        select c.oid::regclass as name from pg_class c join pg_namespace s on s.oid = c.relnamespace
         where s.nspname = 'public' and c.relkind in ('r', 'p', 'v', 'm', 'S', 'f')
           and c.relowner <> 'paygo_owner'::regrole
           and not exists (select from pg_depend d where d.classid = 'pg_class'::regclass and d.objid = c.oid
                            and (d.deptype = 'e' or c.relkind = 'S' and d.deptype in ('a', 'i')))
                            -- an extension's stay its own; a column's sequence follows its table
    loop
        execute format('alter table %s owner to paygo_owner', o.name);
        n := n + 1;
    end loop;
    for o in
        select p.oid::regprocedure as name from pg_proc p join pg_namespace s on s.oid = p.pronamespace
         where s.nspname = 'public' and p.proowner <> 'paygo_owner'::regrole
           and not exists (select from pg_depend d where d.classid = 'pg_proc'::regclass and d.objid = p.oid
                            and d.deptype = 'e')  -- an extension's functions stay the extension's
    loop
        execute format('alter function %s owner to paygo_owner', o.name);
        n := n + 1;
    end loop;
    return n;
end $$;
select paygo_adopt_objects();
alter function paygo_adopt_objects() owner to paygo_owner;
revoke execute on function paygo_adopt_objects() from public;

