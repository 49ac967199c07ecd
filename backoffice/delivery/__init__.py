"""Delivery of tokens: an outbox of SMS and MQTT commands, sent, acknowledged and retried."""
