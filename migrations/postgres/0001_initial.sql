-- Customers and their reference persons (the registry).
CREATE TABLE customers (
    key             TEXT PRIMARY KEY,          -- lower-case name, the match key
    name            TEXT NOT NULL,
    contract_status TEXT NOT NULL,             -- active | suspended
    campuses        TEXT NOT NULL DEFAULT ''   -- ';'-separated
);

CREATE TABLE persons (
    email        TEXT PRIMARY KEY,             -- lower case
    name         TEXT NOT NULL,
    customer_key TEXT NOT NULL REFERENCES customers(key),
    campus       TEXT,
    role         TEXT NOT NULL,                -- campus | general | technical
    language     TEXT NOT NULL
);

CREATE TABLE tickets (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    number            TEXT UNIQUE,
    category          TEXT NOT NULL,
    chargeable_reason TEXT,
    status            TEXT NOT NULL,
    customer          TEXT NOT NULL,
    campus            TEXT,
    sender            TEXT NOT NULL,
    sender_name       TEXT NOT NULL,
    subject           TEXT NOT NULL,
    language          TEXT NOT NULL,
    charge_approved   BIGINT,                 -- NULL until the customer answers
    evidence          TEXT NOT NULL,           -- JSON: why it was sorted so
    created_at        TEXT NOT NULL,           -- RFC 3339, UTC
    updated_at        TEXT NOT NULL
);
CREATE INDEX tickets_status ON tickets(status, category);

-- Every message of a ticket's thread, inbound and outbound.
CREATE TABLE messages (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ticket_id  BIGINT NOT NULL REFERENCES tickets(id),
    direction  TEXT NOT NULL,                  -- in | out
    message_id TEXT NOT NULL,
    from_addr  TEXT NOT NULL,
    subject    TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX messages_message_id ON messages(message_id);
CREATE INDEX messages_ticket ON messages(ticket_id);

-- Every inbound message seen, with its outcome.
CREATE TABLE intake (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id    TEXT NOT NULL,
    from_addr     TEXT NOT NULL,
    subject       TEXT NOT NULL,
    outcome       TEXT NOT NULL,   -- ticket | followup | unregistered | suppressed | duplicate | quarantined
    ticket_number TEXT,
    detail        TEXT NOT NULL,
    source        TEXT NOT NULL,   -- imap | maildir | stdin
    source_key    TEXT UNIQUE,     -- where it came from: re-reading it is not a new message
    raw           BYTEA,            -- kept for quarantined messages
    received_at   TEXT NOT NULL
);
-- One first sighting per Message-ID: a second one is a duplicate, even under races.
CREATE UNIQUE INDEX intake_first_sighting ON intake(message_id)
    WHERE outcome IN ('ticket', 'followup', 'unregistered', 'suppressed');

-- Replies waiting to be sent, written in the same transaction as their ticket.
CREATE TABLE outbox (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ticket_number   TEXT,
    notice          TEXT NOT NULL,
    message_id      TEXT NOT NULL,
    in_reply_to     TEXT NOT NULL,
    envelope_from   TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    raw             BYTEA NOT NULL,
    status          TEXT NOT NULL,             -- pending | sent | failed
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    sent_at         TEXT
);
CREATE INDEX outbox_due ON outbox(status, next_attempt_at);
