-- The platform's PostgreSQL roles (issue 22 finding 2; deploy/database.md), created by a superuser once
-- per cluster (idempotent): `paygo db roles` prints this file, `paygo stack up` runs it on the local one.
-- The database belongs to the owner (CREATE DATABASE paygo OWNER paygo_owner), which then runs every
-- migration; migration 0044 gives the services their grants.
--
--   paygo_owner     owns the schema and runs the migrations (`paygo db migrate`); no service logs in as it
--   paygo_service   (no login) the grants every service shares, given by migration 0044 and, for tables
--                   that later migrations add, by the owner's default privileges
--   paygo_web       the web app (API and pages): the only one with the staff logins' tables
--   paygo_ingest    the ingest workers and the device API
--   paygo_worker    the Celery workers and beat
--   paygo_delivery  token delivery
--
-- None is a superuser, none owns a table (so none can disable a trigger or change
-- session_replication_role), none may create roles or databases. Passwords: ALTER ROLE ... PASSWORD.
do $roles$
declare
    r text;
begin
    if not exists (select from pg_roles where rolname = 'paygo_owner') then
        create role paygo_owner login nosuperuser nocreatedb nocreaterole noreplication nobypassrls;
    end if;
    if not exists (select from pg_roles where rolname = 'paygo_service') then
        create role paygo_service nologin nosuperuser nocreatedb nocreaterole noreplication nobypassrls;
    end if;
    foreach r in array array['paygo_web', 'paygo_ingest', 'paygo_worker', 'paygo_delivery'] loop
        if not exists (select from pg_roles where rolname = r) then
            execute format('create role %I login nosuperuser nocreatedb nocreaterole noreplication nobypassrls '
                           'in role paygo_service', r);
        end if;
    end loop;
end $roles$;
