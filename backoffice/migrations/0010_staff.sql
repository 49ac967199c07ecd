-- Staff identity: users with roles, server-side sessions, API tokens for integrations, failed
-- logins (for lock-out and rate limits), and the append-only audit trail of every change.

create table staff_users (
    id                   bigserial primary key,
    username             text not null unique check (username ~ '^[a-z0-9][a-z0-9._-]{1,62}$'),
    roles                text[] not null check (
        cardinality(roles) >= 1
        and roles <@ array['admin', 'finance', 'call_centre', 'field_agent', 'viewer']::text[]),
    password_hash        text not null,          -- argon2id, in the PHC string format
    must_change_password boolean not null default true,
    failed_logins        integer not null default 0,
    locked_until         timestamptz,
    disabled_at          timestamptz,
    created_at           timestamptz not null default now(),
    password_changed_at  timestamptz
);

-- The cookie holds a random token; only its SHA-256 is stored, so a copy of this table opens nothing.
create table staff_sessions (
    token_hash   bytea primary key,
    user_id      bigint not null references staff_users (id) on delete cascade,
    csrf_token   text not null,
    created_at   timestamptz not null default now(),
    last_seen_at timestamptz not null default now(),
    client_addr  text,
    user_agent   text
);
create index staff_sessions_user on staff_sessions (user_id);

create table api_tokens (
    id           bigserial primary key,
    name         text not null,
    token_hash   bytea not null unique,
    roles        text[] not null check (
        cardinality(roles) >= 1
        and roles <@ array['admin', 'finance', 'call_centre', 'field_agent', 'viewer']::text[]),
    created_by   text not null,
    created_at   timestamptz not null default now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);

create table login_failures (
    at          timestamptz not null default now(),
    username    text not null,
    client_addr text not null
);
create index login_failures_addr on login_failures (client_addr, at);

-- Who did what, when, to which row (its before and after), from which request and address.
-- actor_user_id is null when the platform acted by itself (a callback settled, a job ran).
create table audit_log (
    id            bigserial primary key,
    at            timestamptz not null default now(),
    actor         text not null,
    actor_user_id bigint references staff_users (id),
    action        text not null,
    entity        text not null,
    entity_id     text,
    before        jsonb,
    after         jsonb,
    request_id    text,
    client_addr   text
);
create index audit_log_entity on audit_log (entity, entity_id, id desc);
create index audit_log_actor on audit_log (actor, id desc);

create function audit_log_is_append_only() returns trigger language plpgsql as $$
begin
    raise exception 'audit_log is append-only: % refused', tg_op using errcode = 'insufficient_privilege';
end $$;
create trigger audit_log_no_update_or_delete before update or delete on audit_log
    for each row execute function audit_log_is_append_only();
create trigger audit_log_no_truncate before truncate on audit_log
    for each statement execute function audit_log_is_append_only();

-- The money trail so far joins the one audit trail.
insert into audit_log (at, actor, action, entity, entity_id, after)
select at, actor, action, 'payment', inbox_id::text, detail from payment_audit order by id;
drop table payment_audit;
