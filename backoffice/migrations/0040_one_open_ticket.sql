-- At most one open ticket per unit and kind (issue 21): a technician alert that clears and fires again,
-- or a second call about the same fault, joins the ticket already open instead of opening another with
-- an SLA of its own. Duplicates open today are cancelled in favour of the oldest, and their alerts point
-- at the one kept.
update health_alerts a set ticket_id = d.keep
  from (select id, first_value(id) over (partition by unit_id, kind order by opened_at, id) as keep
          from tickets where state in ('open', 'assigned')) d
 where a.ticket_id = d.id and d.id <> d.keep;

update tickets t set state = 'cancelled', closed_at = paygo_now(), closed_by = 'migration 0040',
                     outcome = 'duplicate of ticket #' || d.keep
  from (select id, first_value(id) over (partition by unit_id, kind order by opened_at, id) as keep
          from tickets where state in ('open', 'assigned')) d
 where t.id = d.id and d.id <> d.keep;

create unique index tickets_one_open on tickets (unit_id, kind) where state in ('open', 'assigned');
