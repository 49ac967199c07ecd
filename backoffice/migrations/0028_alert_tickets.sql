-- A technician alert (battery degrading, tamper, over-temperature) opens a ticket for the field team:
-- the alert remembers which, so it opens one once.
alter table health_alerts add column ticket_id bigint references tickets (id);
