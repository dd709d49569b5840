-- Full-text search over tickets' threads: customers' mail, agents' replies
-- and internal notes (not the automatic replies, whose words every ticket
-- shares). One row per message, its rowid the message's id; the ticket is
-- found through `messages`, so a message moved to another ticket is found
-- there at once. `unicode61 remove_diacritics 2` folds case and accents
-- (`facture` finds `facturé`).
--
-- subject and body hold the message's own words, written by the triggers
-- below in the same transaction as the message, whoever writes it.
-- subject_stems and body_stems hold the Snowball stems of its words in the
-- ticket's language (`factuur` and `facturen` both give `factur`), which
-- SQL cannot compute: the store adds them in the same transaction when it
-- adds a message, and for the messages that existed before this migration
-- (queued in message_search_restem) when it next opens the database.
CREATE VIRTUAL TABLE message_search USING fts5(
    subject, body, subject_stems, body_stems,
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER message_search_insert AFTER INSERT ON messages
WHEN new.direction IN ('in', 'note') OR (new.direction = 'out' AND new.author IS NOT NULL)
BEGIN
    INSERT INTO message_search (rowid, subject, body, subject_stems, body_stems)
    VALUES (new.id, new.subject, new.body, '', '');
END;

CREATE TRIGGER message_search_update AFTER UPDATE OF subject, body, direction, author ON messages
BEGIN
    DELETE FROM message_search WHERE rowid = old.id;
    INSERT INTO message_search (rowid, subject, body, subject_stems, body_stems)
    SELECT new.id, new.subject, new.body, '', ''
    WHERE new.direction IN ('in', 'note') OR (new.direction = 'out' AND new.author IS NOT NULL);
    INSERT OR IGNORE INTO message_search_restem (message_id) VALUES (new.id);
END;

CREATE TRIGGER message_search_delete AFTER DELETE ON messages
BEGIN
    DELETE FROM message_search WHERE rowid = old.id;
END;

-- Messages whose stems are still to be added by the store.
CREATE TABLE message_search_restem (message_id INTEGER PRIMARY KEY);

INSERT INTO message_search (rowid, subject, body, subject_stems, body_stems)
SELECT id, subject, body, '', '' FROM messages
WHERE direction IN ('in', 'note') OR (direction = 'out' AND author IS NOT NULL);

INSERT INTO message_search_restem (message_id)
SELECT id FROM messages
WHERE direction IN ('in', 'note') OR (direction = 'out' AND author IS NOT NULL);

-- Messages moved to another ticket (a merge, or its undo). A search reads
-- a common word's newest messages first, which holds every message of the
-- newest tickets as long as a ticket's messages are not older than the
-- ticket; these are the exceptions, and are always read too. Messages
-- older than their ticket are such moves from before this migration.
CREATE TABLE message_search_moved (message_id INTEGER PRIMARY KEY);

CREATE TRIGGER message_search_move AFTER UPDATE OF ticket_id ON messages
WHEN new.ticket_id <> old.ticket_id
BEGIN
    INSERT OR IGNORE INTO message_search_moved (message_id) VALUES (new.id);
END;

INSERT INTO message_search_moved (message_id)
SELECT m.id FROM messages m JOIN tickets t ON t.id = m.ticket_id
WHERE m.created_at < t.created_at;

-- A search for a customer's name compares it case-insensitively.
CREATE INDEX tickets_customer_lower ON tickets (LOWER(customer));
