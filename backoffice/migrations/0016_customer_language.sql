-- The customer's preferred language, for SMS and the call centre: English, Khmer or Swahili.
alter table customers add column language text not null default 'en' check (language in ('en', 'km', 'sw'));
