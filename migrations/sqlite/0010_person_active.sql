-- 0 for a reference person who left the customer (persons remove, or absent
-- from a persons import --replace): kept for the history of their tickets,
-- no longer registered.
ALTER TABLE persons ADD COLUMN active INTEGER NOT NULL DEFAULT 1;
