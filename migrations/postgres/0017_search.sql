-- Full-text search over tickets' threads: customers' mail, agents' replies
-- and internal notes (not the automatic replies, whose words every ticket
-- shares). Each message gets a tsvector, written by a trigger in the same
-- transaction as the message, whoever writes it:
--   * the subject and the text in the text-search
--     configuration of the ticket's language (dutch, french, english,
--     german; simple otherwise), so `facturen` finds `factuur`;
--   * the same words unstemmed (the `simple` configuration), for words of
--     another language, names and codes, and type-ahead prefixes.
-- Accents and case are folded before either (sd_fold: `facture` finds
-- `facturé`) with translate(), not the unaccent extension: the fold is
-- IMMUTABLE and needs no extension to be installed by a superuser. The
-- search box's words are folded the same way (src/search.rs holds the same
-- two letter lists).

CREATE FUNCTION sd_fold(t text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
    SELECT replace(replace(replace(
        translate(lower(t),
            'àáâãäåāăąçćĉċčďđèéêëēĕėęěìíîïĩīĭįıñńņňòóôõöøōŏőùúûüũūŭůűųýÿŷśšşźżžłřťğ',
            'aaaaaaaaacccccddeeeeeeeeeiiiiiiiiinnnnooooooooouuuuuuuuuuyyyssszzzlrtg'),
        'ß', 'ss'), 'œ', 'oe'), 'æ', 'ae')
$$;

CREATE FUNCTION sd_search_config(language text) RETURNS regconfig
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE language
        WHEN 'nl' THEN 'pg_catalog.dutch'
        WHEN 'fr' THEN 'pg_catalog.french'
        WHEN 'en' THEN 'pg_catalog.english'
        WHEN 'de' THEN 'pg_catalog.german'
        ELSE 'pg_catalog.simple'
    END::regconfig
$$;

-- A message's words. The text is cut at 200,000 characters: a tsvector
-- holds at most 1 MB, and a longer mail must still be stored.
-- Both vector functions keep the search_path they were made with: a
-- restore (pg_restore runs with an empty search_path) computes the
-- generated subject column through them and must find sd_fold.
CREATE FUNCTION sd_message_vector(language text, subject text, body text) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path FROM CURRENT AS $$
    SELECT to_tsvector(sd_search_config(language), sd_fold(left(subject, 2000)))
        || to_tsvector('pg_catalog.simple', sd_fold(left(subject, 2000)))
        || to_tsvector(sd_search_config(language), sd_fold(left(body, 200000)))
        || to_tsvector('pg_catalog.simple', sd_fold(left(body, 200000)))
$$;

-- A ticket's subject alone, for ranking the tickets whose subject holds
-- every word above those that hold them only in a message's text.
CREATE FUNCTION sd_subject_vector(language text, subject text) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path FROM CURRENT AS $$
    SELECT to_tsvector(sd_search_config(language), sd_fold(left(subject, 2000)))
        || to_tsvector('pg_catalog.simple', sd_fold(left(subject, 2000)))
$$;

-- One searched word (letters and digits, folded by the caller) as a
-- tsquery: its stems in the four languages or the word itself, each a
-- prefix when `prefix` is set (type-ahead). Built from to_tsvector, which
-- drops a language's stop words silently (to_tsquery would warn); the
-- simple configuration always keeps the word. quote_literal makes each
-- lexeme a quoted token, never query syntax.
CREATE FUNCTION sd_term_query(word text, prefix boolean) RETURNS tsquery
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
    SELECT string_agg(quote_literal(l) || CASE WHEN prefix THEN ':*' ELSE '' END, ' | ')::tsquery
    FROM (SELECT DISTINCT unnest(tsvector_to_array(
              to_tsvector('pg_catalog.dutch', w) || to_tsvector('pg_catalog.french', w)
           || to_tsvector('pg_catalog.english', w) || to_tsvector('pg_catalog.german', w)
           || to_tsvector('pg_catalog.simple', w))) AS l
          FROM (SELECT sd_fold(left(word, 64)) AS w) folded) lexemes
$$;

ALTER TABLE messages ADD COLUMN search tsvector;

UPDATE messages m SET search = sd_message_vector(t.language, m.subject, m.body)
FROM tickets t
WHERE t.id = m.ticket_id
  AND (m.direction IN ('in', 'note') OR (m.direction = 'out' AND m.author IS NOT NULL));

CREATE FUNCTION sd_messages_search() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.direction IN ('in', 'note') OR (NEW.direction = 'out' AND NEW.author IS NOT NULL) THEN
        NEW.search := sd_message_vector(
            (SELECT language FROM tickets WHERE id = NEW.ticket_id), NEW.subject, NEW.body);
    ELSE
        NEW.search := NULL;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER messages_search BEFORE INSERT OR UPDATE OF subject, body, direction, author, ticket_id
ON messages FOR EACH ROW EXECUTE FUNCTION sd_messages_search();

CREATE INDEX messages_search ON messages USING gin (search);

ALTER TABLE tickets ADD COLUMN subject_search tsvector
    GENERATED ALWAYS AS (sd_subject_vector(language, subject)) STORED;
CREATE INDEX tickets_subject_search ON tickets USING gin (subject_search);

-- A search's plan depends on how many messages hold its words: newest
-- tickets first checking each (a common word) or the index's few hits (a
-- rare one). The planner knows the commonest lexemes from the statistics;
-- it guesses the others from the least common one it knows, so it is told
-- ten times more lexemes than by default, and a rare word is seen as rare.
ALTER TABLE messages ALTER COLUMN search SET STATISTICS 1000;
ALTER TABLE tickets ALTER COLUMN subject_search SET STATISTICS 1000;
ANALYZE messages;
ANALYZE tickets;

-- A search for a customer's name compares it case-insensitively.
CREATE INDEX tickets_customer_lower ON tickets (LOWER(customer));
