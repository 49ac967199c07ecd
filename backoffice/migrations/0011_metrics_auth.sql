-- OpenPAYGO Metrics simple auth ('sa') signs only the serial number: whoever has seen one request of
-- a unit can send anything as that unit, with any request count or timestamp. It is refused unless
-- the unit's product allows it (for firmware that can do nothing better); off by default.
alter table products add column metrics_simple_auth boolean not null default false;
