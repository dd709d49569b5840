-- Daily work: agents' drafts kept on the server, and tickets merged into
-- others (with what moved, so a merge can be undone exactly).

-- A reply or note an agent is writing, saved as they type: one per agent,
-- ticket and kind. Sending it clears it; a merge moves it.
CREATE TABLE drafts (
    agent         TEXT NOT NULL,            -- the agent's address, lower case
    ticket_number TEXT NOT NULL,
    kind          TEXT NOT NULL,            -- reply | note
    body          TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    PRIMARY KEY (agent, ticket_number, kind)
);
CREATE INDEX drafts_ticket ON drafts(ticket_number);

-- The ticket this one was merged into (closed as merged); NULL otherwise.
-- Mail for it lands on that ticket.
ALTER TABLE tickets ADD COLUMN merged_into TEXT;

-- Every merge: which ticket went into which, its status before (restored
-- by an undo), who did it and when, and whether it was undone.
CREATE TABLE merges (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    from_ticket TEXT NOT NULL,
    into_ticket TEXT NOT NULL,
    from_status TEXT NOT NULL,
    merged_by   TEXT NOT NULL,
    merged_at   TEXT NOT NULL,
    undone_by   TEXT,
    undone_at   TEXT
);
CREATE INDEX merges_from ON merges(from_ticket, id);
CREATE INDEX merges_into ON merges(into_ticket, id);

-- The messages (messages.id) a merge moved: an undo moves exactly these back.
CREATE TABLE merge_messages (
    merge_id BIGINT NOT NULL REFERENCES merges(id),
    message  BIGINT NOT NULL,
    PRIMARY KEY (merge_id, message)
);
