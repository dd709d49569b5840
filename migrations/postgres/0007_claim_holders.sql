-- Which process claimed a reply, so a restart on the same machine can take
-- over the claims of a killed process at once instead of waiting them out.
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
