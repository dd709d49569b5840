-- Who decided on a ticket's charge (a registered person of the ticket's
-- customer, by address) and with which message (its Message-ID).
ALTER TABLE tickets ADD COLUMN charge_decided_by TEXT;
ALTER TABLE tickets ADD COLUMN charge_decided_message TEXT;
-- 1 for a message in a ticket's thread from someone who is not a registered
-- person of the ticket's customer: kept for agents to read, it decides nothing.
ALTER TABLE messages ADD COLUMN outsider INTEGER NOT NULL DEFAULT 0;
