-- OpenPAYGO Metrics as the specification has it (issue 17): data formats registered in the database
-- (per product, or for any product), what a unit was last told and how it last reported, and the
-- variables a device sends that telemetry has no column for.

-- A data format (the specification's Data Format Object): the order of the values of a condensed
-- request, the interval between undated historical steps (negative: newest first), and each
-- variable's description (name, type, unit, scale_factor, aggregation_method; "column": the
-- telemetry column it fills, when its name alone does not say).
create table metrics_data_formats (
    id                        bigserial primary key,
    product_id                bigint references products (id),  -- null: any product's units may use it
    data_order                jsonb not null default '[]',
    historical_data_order     jsonb not null default '[]',
    historical_data_interval  integer,
    variables                 jsonb not null default '{}',
    registered_by             text not null,  -- 'migration', 'staff:<name>', 'token:<name>', 'jwt:<subject>'
    created_at                timestamptz not null default now()
);
-- The format every unit of this platform has spoken so far (protocol.openpaygo_metrics.DATA_FORMATS[1]).
insert into metrics_data_formats (id, data_order, historical_data_order, historical_data_interval, variables,
                                  registered_by)
values (1, '["token_count", "firmware_version"]', '["batt_v", "soc", "pv_wh", "load_wh", "batt_temp_c"]', 1200,
        '{"batt_v": {"name": "Battery voltage", "type": "float", "unit": "V", "aggregation_method": "average"},
          "soc": {"name": "State of charge", "type": "float", "unit": "1", "aggregation_method": "average"},
          "pv_wh": {"name": "PV energy", "type": "float", "unit": "Wh", "aggregation_method": "sum"},
          "load_wh": {"name": "Load energy", "type": "float", "unit": "Wh", "aggregation_method": "sum"},
          "batt_temp_c": {"name": "Battery temperature", "type": "float", "unit": "°C",
                          "aggregation_method": "max"}}',
        'migration');
-- The simulator's Metrics units (firmware_sim/metrics_device.py, protocol DATA_FORMATS[2]): every
-- column of a reading, each step dated (its buffer may span an outage).
insert into metrics_data_formats (id, data_order, historical_data_order, variables, registered_by)
values (2, '["token_count", "firmware_version", "tampered"]',
        '["batt_v", "batt_a", "soc", "batt_temp_c", "pv_v", "pv_w", "pv_wh", "load_wh", "credit_s", "locked", "rssi",
          "timestamp"]',
        '{"tampered": {"name": "Enclosure opened", "type": "bool", "aggregation_method": "max"}}', 'migration');
select setval(pg_get_serial_sequence('metrics_data_formats', 'id'), 2);

-- Values of a reading that no telemetry column holds (a format's own variables, a tamper flag, the
-- token count...), so that nothing a device sends is lost. A column added to the partitioned parent
-- (or hypertable) reaches every partition; rows written before have none (null).
alter table telemetry add column extra jsonb;

-- Per unit: how it last reported, and the server move an administrator ordered ("base_url"): sent in
-- every answer from base_url_set_at on; base_url_sent_at is the last answer that carried it.
alter table metrics_state
    add column last_auth_method   text,
    add column last_data_format   bigint references metrics_data_formats (id),
    add column last_request_at    timestamptz,
    add column base_url           text,
    add column base_url_set_at    timestamptz,
    add column base_url_sent_at   timestamptz;
-- Device-specific data for the unit's next answers ("extra_data" of the Server Response Object), set
-- by an integration; sent, signed, in every answer while set.
alter table metrics_state add column extra_data jsonb;

-- OpenPAYGO Metrics "time mode": the product's devices expect one SET_TIME token for their expiry
-- (the specification's note on token_list) instead of the ADD_TIME tokens they lack. Off: the
-- tokens they lack, in increasing count order (what this platform's keypad firmware takes).
alter table products add column metrics_set_time boolean not null default false;
