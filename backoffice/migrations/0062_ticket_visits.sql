-- A field visit that does not close its ticket (issue 26): the customer was not home, the visit was
-- moved to another day, or the agent must come back with a part. The ticket stays open (assigned to
-- the same agent, its SLA unchanged: the customer still waits); the visits are its history.
create table ticket_visits (
    id             bigserial primary key,
    ticket_id      bigint not null references tickets (id),
    outcome        text not null check (outcome in ('customer_not_home', 'rescheduled', 'needs_part')),
    next_visit_on  date,
    note           text check (length(note) <= 2000),
    recorded_by    text not null,
    recorded_at    timestamptz not null default paygo_now(),
    check ((outcome = 'rescheduled') <= (next_visit_on is not null))
);
create index ticket_visits_ticket on ticket_visits (ticket_id, id);
