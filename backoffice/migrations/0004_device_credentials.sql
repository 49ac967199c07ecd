-- Per-unit MQTT credentials for the device-facing broker listener (the username is the serial).
alter table units
    add column mqtt_password_enc  bytea,   -- Fernet-encrypted, for the unit's SIM provisioning and the simulator
    add column mqtt_password_hash text;    -- the broker's password-file form (PBKDF2-SHA512, mosquitto's $7$)
