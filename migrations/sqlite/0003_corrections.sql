-- Agents' corrections of the sorting: what the daemon decided and what the
-- agent set instead. Training folds them into the model.
CREATE TABLE corrections (
    ticket_number TEXT NOT NULL,
    field         TEXT NOT NULL,   -- category | chargeable_reason | status
    old_value     TEXT,
    new_value     TEXT,
    created_at    TEXT NOT NULL
);
CREATE INDEX corrections_ticket ON corrections(ticket_number);
