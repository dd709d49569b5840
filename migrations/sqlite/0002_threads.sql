-- Why an agent must look at a ticket (unclear charge answer, loop breaker, bounce).
ALTER TABLE tickets ADD COLUMN attention TEXT;
-- The closed ticket a new one continues.
ALTER TABLE tickets ADD COLUMN related_ticket TEXT;
-- The customer's words the charge decision was based on.
ALTER TABLE tickets ADD COLUMN charge_decision TEXT;

-- Addresses an agent should know about: bounced, or opening tickets like a robot.
CREATE TABLE address_flags (
    address    TEXT NOT NULL,
    reason     TEXT NOT NULL,          -- bounced | loop_breaker
    detail     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (address, reason)
);

CREATE INDEX outbox_recipient ON outbox(recipient, created_at);
CREATE INDEX tickets_sender ON tickets(sender, created_at);
