"""Device credentials: each unit's own MQTT login, and the broker's password file that holds them."""
