-- Which servicedesk process works on a mailbox: several daemons may share one
-- database; one holds a mailbox's lease at a time and renews it, another takes
-- over when it stops renewing.
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
