-- The agents' workspace: who may work in it, their sessions and API
-- tokens, login attempts (for throttling), assignments, and the audit of
-- every change to a ticket.

-- An agent of the desk. Passwords are kept only as Argon2id hashes.
CREATE TABLE agents (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    email         TEXT NOT NULL UNIQUE,     -- lower case
    name          TEXT NOT NULL,
    role          TEXT NOT NULL,            -- agent | lead | admin
    password_hash TEXT NOT NULL,            -- PHC string (argon2id)
    active        INTEGER NOT NULL DEFAULT 1,
    language      TEXT,                     -- the workspace's language they chose
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

-- Server-side sessions: only a hash of the session id is stored, so a copy
-- of the database logs nobody in.
CREATE TABLE agent_sessions (
    id_hash    TEXT PRIMARY KEY,            -- SHA-256 of the cookie's value, hex
    agent_id   INTEGER NOT NULL REFERENCES agents(id),
    csrf_token TEXT NOT NULL,               -- proof a form came from our pages
    created_at TEXT NOT NULL,
    last_seen  TEXT NOT NULL
);
CREATE INDEX agent_sessions_agent ON agent_sessions(agent_id);

-- API tokens for scripts; shown once, stored hashed.
CREATE TABLE api_tokens (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash TEXT NOT NULL UNIQUE,        -- SHA-256 of the token, hex
    agent_id   INTEGER NOT NULL REFERENCES agents(id),
    label      TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_used  TEXT
);
CREATE INDEX api_tokens_agent ON api_tokens(agent_id);

-- Failed logins, per address and per client, for throttling.
CREATE TABLE login_failures (
    key        TEXT NOT NULL,               -- 'email:<address>' or 'client:<ip>'
    created_at TEXT NOT NULL
);
CREATE INDEX login_failures_key ON login_failures(key, created_at);

-- The agent a ticket is assigned to (their address), NULL when unassigned.
ALTER TABLE tickets ADD COLUMN assignee TEXT;
CREATE INDEX tickets_assignee ON tickets(assignee, status);
-- The queue page's counts read this index alone, not the tickets.
CREATE INDEX tickets_counts ON tickets(status, category, assignee, attention);
-- Every list of the workspace pages backwards through ids.
CREATE INDEX tickets_category_id ON tickets(category, id);

-- Who corrected the sorting ('cli' for `tickets set`).
ALTER TABLE corrections ADD COLUMN agent TEXT;

-- Who wrote an agent's reply or an internal note (an agent's address);
-- NULL for mail and automatic replies.
ALTER TABLE messages ADD COLUMN author TEXT;
-- An inbound mail's HTML part as received (NULL when it had none): shown to
-- agents only sanitised, in a sandboxed frame; the text in body stays the
-- default view.
ALTER TABLE messages ADD COLUMN html TEXT;

-- The attachments of inbound mail, offered to agents only as downloads.
CREATE TABLE attachments (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    message      INTEGER NOT NULL REFERENCES messages(id),
    name         TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         INTEGER NOT NULL,
    data         BLOB NOT NULL
);
CREATE INDEX attachments_message ON attachments(message);

-- Every change to a ticket: by an agent (agent:<address>), the command line
-- (cli), mail (mail) or the machine (machine).
CREATE TABLE ticket_events (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_number TEXT NOT NULL,
    actor         TEXT NOT NULL,
    field         TEXT NOT NULL,            -- category, status, assignee, reply, note, ...
    old_value     TEXT,
    new_value     TEXT,
    created_at    TEXT NOT NULL
);
CREATE INDEX ticket_events_ticket ON ticket_events(ticket_number, id);

-- Saved replies agents start an answer from, per language; leads edit them.
-- The text is a template over the ticket's fields (number, subject,
-- customer, name, agent).
CREATE TABLE saved_replies (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT NOT NULL,
    language   TEXT NOT NULL,               -- nl | fr | en | de
    body       TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (name, language)
);
