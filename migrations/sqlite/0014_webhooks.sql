-- Webhooks: calls to the desk's other systems (chat, CRM, billing) when a
-- ticket is created, changes status or gets a charge decision. They are
-- made from the audit trail (ticket_events): `webhook_cursor` remembers the
-- last event turned into deliveries, in the same transaction as those
-- deliveries, so each event is delivered at least once.
CREATE TABLE webhook_cursor (
    name          TEXT PRIMARY KEY,
    last_event_id INTEGER NOT NULL
);
CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    hook            TEXT NOT NULL,      -- the url it goes to
    event_id        INTEGER NOT NULL,    -- ticket_events.id
    event           TEXT NOT NULL,      -- ticket.created | ticket.status_changed | ticket.charge_decided
    ticket_number   TEXT NOT NULL,
    body            TEXT NOT NULL,      -- the JSON sent
    status          TEXT NOT NULL,      -- pending | delivered | failed
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    delivered_at    TEXT,
    UNIQUE (hook, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(status, next_attempt_at);
