-- Two lookups made for every incoming message scanned the whole outbox: the
-- daily explanation limit counts replies per address case-insensitively, and a
-- reply to one of our notices is recognised by the notice's Message-ID.
DROP INDEX outbox_recipient;
CREATE INDEX outbox_recipient_lower ON outbox (LOWER(recipient), created_at);
CREATE INDEX outbox_message_id ON outbox (message_id);
