-- The live desk: who has a ticket open, and who is writing a reply on it.
-- One row per browser tab (`client`), refreshed by its heartbeats; a row
-- not refreshed for a minute no longer counts and is deleted later.
CREATE TABLE presence (
    ticket_number TEXT NOT NULL,
    agent         TEXT NOT NULL,            -- the agent's address
    name          TEXT NOT NULL,            -- their name, as shown to others
    client        TEXT NOT NULL,            -- a random id per tab
    composing     BIGINT NOT NULL DEFAULT 0, -- 1 while the reply box holds text
    seen_at       TEXT NOT NULL,
    PRIMARY KEY (ticket_number, agent, client)
);
CREATE INDEX presence_seen ON presence(seen_at);

-- Every daemon on this database LISTENs: a new audit event (ticket_events)
-- or a presence change is announced at commit, whoever wrote it. The
-- payload is empty: listeners read the rows themselves (NOTIFY folds
-- repeats within a transaction into one).
CREATE FUNCTION servicedesk_live_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify(TG_ARGV[0], '');
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER ticket_events_notify AFTER INSERT ON ticket_events
    FOR EACH STATEMENT EXECUTE FUNCTION servicedesk_live_notify('servicedesk_events');
CREATE TRIGGER presence_notify AFTER INSERT OR UPDATE OR DELETE ON presence
    FOR EACH STATEMENT EXECUTE FUNCTION servicedesk_live_notify('servicedesk_presence');
