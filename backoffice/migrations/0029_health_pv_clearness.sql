-- Fleet health (issue 16): the panel's yield while the battery still takes charge, against the sun.
-- A full battery makes the controller harvest only what the load takes, so the day's energy says
-- nothing about a covered panel on a kit with spare capacity; the PV power while the battery is
-- still charging does. pv_clearness: the day's highest PV power per watt-peak, over readings with
-- the battery below 97 % and the sun at least 17.5° up, divided by the clear-sky irradiance at the
-- unit's place and time (Haurwitz, NOAA sun position) / 1000 W/m². About the day's clearness times
-- the panel's soiling; a panel under a bag shows its 15-35 % from the first morning.
alter table unit_health_daily add column pv_clearness real;
