-- A ticket's priority (normal, high, critical), from the sorting or an agent.
ALTER TABLE tickets ADD COLUMN priority TEXT NOT NULL DEFAULT 'normal';

-- The desk's own sorting models, trained on the built-in corpora and its
-- agents' corrections (`servicedesk model train`, or the daemon every
-- `[triage] retrain_every` corrections). At most one is active; none means
-- the model built into the binary. Old ones stay for `model use`.
CREATE TABLE models (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at  TEXT NOT NULL,
    bytes       BLOB NOT NULL,
    sha256      TEXT NOT NULL,
    corrections INTEGER NOT NULL,   -- agents' corrections it learned from
    report      TEXT NOT NULL,      -- held-out figures, as JSON
    active      INTEGER NOT NULL DEFAULT 0,
    note        TEXT NOT NULL DEFAULT ''
);
