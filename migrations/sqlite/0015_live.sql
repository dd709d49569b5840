-- The live desk: who has a ticket open, and who is writing a reply on it.
-- One row per browser tab (`client`), refreshed by its heartbeats; a row
-- not refreshed for a minute no longer counts and is deleted later.
CREATE TABLE presence (
    ticket_number TEXT NOT NULL,
    agent         TEXT NOT NULL,            -- the agent's address
    name          TEXT NOT NULL,            -- their name, as shown to others
    client        TEXT NOT NULL,            -- a random id per tab
    composing     INTEGER NOT NULL DEFAULT 0, -- 1 while the reply box holds text
    seen_at       TEXT NOT NULL,
    PRIMARY KEY (ticket_number, agent, client)
);
CREATE INDEX presence_seen ON presence(seen_at);
