-- Customers for the call centre: several phone numbers each (E.164, their own table), an optional
-- national id (unique when present), the GPS position range-checked, notes of every call; and the
-- indexes of the one search box (name words, trigrams of those words, btree on phone, national id,
-- serial prefix).

create extension if not exists pg_trgm;

create table customer_phones (
    id           bigserial primary key,
    customer_id  bigint not null references customers (id) on delete cascade,
    e164         text not null check (e164 ~ '^\+[1-9][0-9]{5,14}$'),
    position     smallint not null default 0,   -- 0 is the number SMS go to
    label        text check (length(label) <= 40),
    created_at   timestamptz not null default now(),
    unique (customer_id, e164)
);
-- The search box finds a customer by a number typed any way: it is normalised to E.164 first.
create index customer_phones_e164_idx on customer_phones (e164);
create index customer_phones_customer_idx on customer_phones (customer_id, position);

-- The old single column: numbers that are international already (country code, with or without '+',
-- spaces and dashes) move into the table; one that is not (a national form: its country is unknown
-- here) stays in legacy_phone, shown on the customer's page to be entered again.
insert into customer_phones (customer_id, e164)
select id, '+' || regexp_replace(phone, '[^0-9]', '', 'g')
  from customers
 where regexp_replace(phone, '[\s().-]', '', 'g') ~ '^\+?[1-9][0-9]{7,14}$';
alter table customers rename column phone to legacy_phone;
update customers set legacy_phone = null
 where regexp_replace(legacy_phone, '[\s().-]', '', 'g') ~ '^\+?[1-9][0-9]{7,14}$';

alter table customers
    add column national_id text check (national_id ~ '^[0-9A-Z/-]{2,32}$'),
    add column updated_at  timestamptz not null default now(),
    add constraint customers_name_check check (length(btrim(name)) between 1 and 200),
    add constraint customers_latitude_check check (latitude between -90 and 90),
    add constraint customers_longitude_check check (longitude between -180 and 180);
create unique index customers_national_id_key on customers (national_id) where national_id is not null;
-- Names are found tolerant of spelling, word by word: each word typed is matched to the words that
-- customers' names are made of (by trigram similarity, over this small vocabulary: a few thousand
-- words, however many customers), and the customers whose names hold one of those words for every
-- word typed come from a word index on the names; they are ranked by the similarity of the whole
-- name. A trigram index over the million names themselves spent 50-90 ms merging the long lists of
-- common trigrams for one name; this costs about a millisecond.
create table customer_name_words (word text primary key);
create index customer_name_words_trgm_idx on customer_name_words using gin (word gin_trgm_ops);
create index customers_name_words_idx on customers using gin (to_tsvector('simple', name));
create function customer_name_words_add() returns trigger language plpgsql as $$
begin
    insert into customer_name_words (word)
    select distinct unnest(tsvector_to_array(to_tsvector('simple', n.name))) from new_rows n
    on conflict do nothing;
    return null;
end $$;
-- Once per statement (a COPY of a million customers adds its words in one insert).
create trigger customers_name_words_added after insert on customers
    referencing new table as new_rows for each statement execute function customer_name_words_add();
create trigger customers_name_words_changed after update on customers
    referencing new table as new_rows for each statement execute function customer_name_words_add();
insert into customer_name_words
select distinct unnest(tsvector_to_array(to_tsvector('simple', name))) from customers on conflict do nothing;
-- Serials by prefix ("SHS0001…"): the database's collation is not C, so LIKE needs the pattern ops.
create index units_serial_pattern_idx on units (serial text_pattern_ops);

-- Notes of every call: who (the login), when, what was said; one row per note, never edited.
create table call_notes (
    id             bigserial primary key,
    customer_id    bigint not null references customers (id),
    unit_id        bigint references units (id),
    author         text not null,
    author_user_id bigint references staff_users (id),
    body           text not null check (length(btrim(body)) between 1 and 2000),
    created_at     timestamptz not null default now()
);
create index call_notes_customer_idx on call_notes (customer_id, id desc);
