-- What the call centre's unit page reads, each by an index (a million units, 30 days of readings
-- each): a contract's payments, a token's deliveries, the SMS that went to a customer's numbers.
create index payment_inbox_contract_idx on payment_inbox (contract_id, received_at desc) where contract_id is not null;
create index outbox_token_idx on outbox (token_id);
create index outbox_sms_recipient_idx on outbox (recipient, id desc) where channel = 'sms';
