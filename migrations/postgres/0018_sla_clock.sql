-- The SLA clock. A customer's tier (the customers CSV's optional `sla`
-- column; NULL: none, the configuration's default_tier applies if any).
ALTER TABLE customers ADD COLUMN sla TEXT;

-- Each ticket's clock, kept up to date whenever its status, category or
-- priority changes (src/sla.rs, Clock::follow). Times are RFC 3339 UTC
-- text like every other time here; minutes are business minutes.
ALTER TABLE tickets ADD COLUMN sla_tier TEXT;                 -- the tier it got when it arrived; NULL: no SLA
ALTER TABLE tickets ADD COLUMN sla_response_minutes INTEGER;  -- the first-response target that applies
ALTER TABLE tickets ADD COLUMN sla_resolution_minutes INTEGER;
ALTER TABLE tickets ADD COLUMN sla_paused_minutes INTEGER NOT NULL DEFAULT 0; -- finished pauses
ALTER TABLE tickets ADD COLUMN sla_paused_since TEXT;         -- the clock stands still since then
ALTER TABLE tickets ADD COLUMN first_response_at TEXT;        -- an agent's first answer
ALTER TABLE tickets ADD COLUMN first_response_due TEXT;
ALTER TABLE tickets ADD COLUMN resolution_due TEXT;
-- The earliest due time the running clock still has to meet; NULL while
-- it stands still. The "due soon / overdue" view reads this index.
ALTER TABLE tickets ADD COLUMN sla_next_due TEXT;
CREATE INDEX tickets_sla_next_due ON tickets(sla_next_due) WHERE sla_next_due IS NOT NULL;

-- Which SLA policy the stored due times were computed with (a hash of
-- `[sla]`): a daemon that starts or reloads with another one computes the
-- due times of the open tickets again.
CREATE TABLE sla_policy (
    id          INTEGER PRIMARY KEY,    -- always 1
    fingerprint TEXT NOT NULL,
    applied_at  TEXT NOT NULL
);
