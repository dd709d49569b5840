-- Lookups made for every message and reply that read far more than they use:
-- the daily explanation limit counts replies per address case-insensitively,
-- a reply to one of our notices is recognised by the notice's Message-ID, and
-- the sender claims the next due replies, which this index now answers alone
-- (without reading the rows, whose stored message comes before claimed_until).
DROP INDEX outbox_recipient;
CREATE INDEX outbox_recipient_lower ON outbox (LOWER(recipient), created_at);
CREATE INDEX outbox_message_id ON outbox (message_id);
DROP INDEX outbox_due;
CREATE INDEX outbox_due ON outbox (status, next_attempt_at, claimed_until);
