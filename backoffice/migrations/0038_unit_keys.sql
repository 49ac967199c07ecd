-- One OpenPAYGO key, one contract (issue 21). A unit that came back to stock was sold again with its
-- old key and token count: a unit that had received DISABLE_PAYG stayed unlocked for its next
-- customer, and the old customer's tokens kept working. A unit is now re-keyed at the depot (a new
-- secret, starting code and count, written into the unit by the technician's provisioning tool;
-- docs/unit_keys.md) before it is sold again. units.key_generation counts the keys a unit was given
-- (0: the one it was registered with); a contract records the generation it was sold under, and a
-- generation serves one contract (unique), so the database refuses a second sale under one key.
alter table units add column key_generation integer not null default 0;
alter table contracts add column key_generation integer;
-- Existing contracts: the newest of each unit holds its current key; older ones' keys are not known.
update contracts c set key_generation = 0
 where c.id = (select c2.id from contracts c2 where c2.unit_id = c.unit_id
                order by c2.signed_on desc, c2.id desc limit 1);
create unique index contracts_one_per_key on contracts (unit_id, key_generation);

-- Each re-keying, as the provisioning step it is: which generation, by whom, when and where. The key
-- itself is only in units (encrypted); this history never holds it.
create table unit_keyings (
    id          bigserial primary key,
    unit_id     bigint not null references units (id),
    generation  integer not null check (generation > 0),
    at          timestamptz not null default paygo_now(),
    actor       text not null,
    note        text,
    unique (unit_id, generation)
);
