-- A sender claims a reply before sending it, so two daemons sharing one
-- database never send the same reply; a claim left by a crashed sender expires.
ALTER TABLE outbox ADD COLUMN claimed_until TEXT;
