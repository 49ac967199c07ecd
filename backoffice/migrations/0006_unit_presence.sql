-- Online / offline as each unit last announced it on its status topic (retained "online" when it
-- connects, its last will "offline" when the connection drops), for the call-centre pages.
create table unit_presence (
    unit_id     bigint primary key references units (id),
    online      boolean not null,
    changed_at  timestamptz not null
);
