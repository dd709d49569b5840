//! Full-text search in the store: a parsed [`Search`] as FTS5 (SQLite) or
//! `tsquery` (PostgreSQL), combined with the workspace's filters, ranked
//! and paged; the stems SQLite's index needs (see migration 0017).
//!
//! Ranking: a ticket the whole text names (number, sender, customer) comes
//! first, then tickets with every word in their subject, then tickets with
//! every word in one message; within each, the newest first. The order is
//! stable, so "next page" continues below the last ticket shown (keyset on
//! rank and id, never OFFSET). Each rank is one query, newest first with a
//! limit: a common word reads about as many tickets as the page shows.
//!
//! The subject: on PostgreSQL the ticket's own (`tickets.subject_search`);
//! on SQLite the subject of any of its searched messages, which is the
//! ticket's (its first mail's) or a reply's `Re: [CS-…]` of it.

use std::collections::HashMap;

use sqlx::Row;

use super::workspace::{Arg, TicketQuery};
use super::{Backend, Result, Store, Tx};
use crate::domain::Language;
use crate::search::{index_stems, Found, HitTicket, Search, Term};

/// How much of each message's text a search page reads for its
/// snippets.
const SNIPPET_READ: i64 = 50_000;

/// Messages whose stems are added per transaction when the database opens.
const RESTEM_BATCH: i64 = 500;

/// An FTS5 string for one word: its folded and typed forms and its stems,
/// each a quoted token (the words hold only letters and digits; quotes are
/// doubled all the same).
fn fts5_term(t: &Term) -> String {
    let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let mut alts = vec![format!("{}{}", q(&t.word), if t.prefix { "*" } else { "" })];
    alts.extend(t.raw.iter().map(|r| q(r)));
    alts.extend(t.stems.iter().map(|s| q(s)));
    format!("({})", alts.join(" OR "))
}

/// The FTS5 query of a search: anywhere in a message, or (`subject_only`)
/// in its subject.
fn fts5_query(s: &Search, subject_only: bool) -> String {
    let terms: Vec<String> = s.terms.iter().map(fts5_term).collect();
    let mut parts = Vec::new();
    if !terms.is_empty() {
        let all = terms.join(" AND ");
        parts.push(if subject_only {
            format!("{{subject subject_stems}} : ({all})")
        } else {
            format!("({all})")
        });
    }
    for p in &s.phrases {
        let phrase: Vec<String> = p.iter().map(|w| w.replace('"', "\"\"")).collect();
        let cols = if subject_only {
            "subject"
        } else {
            "{subject body}"
        };
        parts.push(format!("{cols} : \"{}\"", phrase.join(" ")));
    }
    parts.join(" AND ")
}

/// Pushes a bound value and returns its placeholder.
fn bind(args: &mut Vec<Arg>, a: Arg) -> String {
    args.push(a);
    format!("${}", args.len())
}

/// The tsquery expression of a search (built in SQL from bound words by
/// `sd_term_query` and `phraseto_tsquery`).
fn tsquery(s: &Search, args: &mut Vec<Arg>) -> String {
    let mut parts = Vec::new();
    for t in &s.terms {
        let w = bind(args, Arg::Text(t.word.clone()));
        parts.push(format!(
            "sd_term_query({w}, {})",
            if t.prefix { "TRUE" } else { "FALSE" }
        ));
    }
    for p in &s.phrases {
        let w = bind(args, Arg::Text(p.join(" ")));
        parts.push(format!("phraseto_tsquery('pg_catalog.simple', {w})"));
    }
    format!("({})", parts.join(" && "))
}

/// The three ranks of a search as conditions on a `tickets` row: 0 the
/// text names the ticket (number, sender, customer), 1 every word is in
/// its subject, 2 every word is in one of its messages. `None` for a rank
/// the text cannot reach.
///
/// `from` (SQLite) reads only the messages from that row id on: see
/// [`Store::search_page`].
fn tier_conds(
    backend: Backend,
    s: &Search,
    args: &mut Vec<Arg>,
    from: Option<i64>,
) -> [Option<String>; 3] {
    let mut exact = Vec::new();
    if let Some(id) = s.exact.id {
        exact.push(format!("id = {}", bind(args, Arg::Int(id))));
    }
    if let Some(n) = &s.exact.number {
        exact.push(format!("number = {}", bind(args, Arg::Text(n.clone()))));
    }
    if let Some(a) = &s.exact.address {
        exact.push(format!("sender = {}", bind(args, Arg::Text(a.clone()))));
    }
    if let Some(d) = &s.exact.domain {
        let pattern = format!(
            "%{}",
            d.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        exact.push(format!(
            "sender LIKE {} ESCAPE '\\'",
            bind(args, Arg::Text(pattern))
        ));
    }
    if let Some(c) = &s.exact.customer {
        exact.push(format!(
            "LOWER(customer) = {}",
            bind(args, Arg::Text(c.clone()))
        ));
    }
    let exact = (!exact.is_empty()).then(|| format!("({})", exact.join(" OR ")));
    if !s.has_text() {
        return [exact, None, None];
    }
    let [subject, text] = match backend {
        Backend::Sqlite => [true, false].map(|subject_only| {
            let q = bind(args, Arg::Text(fts5_query(s, subject_only)));
            let all = format!(
                "id IN (SELECT m.ticket_id FROM message_search \
                 JOIN messages m ON m.id = message_search.rowid WHERE message_search MATCH {q}"
            );
            match from {
                None => format!("{all})"),
                // The window, and the messages moved between tickets
                // wherever they are (few: CROSS JOIN reads them first, in
                // that order, rather than every message).
                Some(r) => format!(
                    "({all} AND message_search.rowid >= {}) OR id IN (SELECT m.ticket_id \
                     FROM message_search_moved mv CROSS JOIN message_search \
                     ON message_search.rowid = mv.message_id CROSS JOIN messages m ON m.id = mv.message_id \
                     WHERE message_search MATCH {q}))",
                    bind(args, Arg::Int(r))
                ),
            }
        }),
        Backend::Postgres => {
            let q = tsquery(s, args);
            [
                format!("subject_search @@ {q}"),
                format!(
                    "EXISTS (SELECT 1 FROM messages m WHERE m.ticket_id = tickets.id AND m.search @@ {q})"
                ),
            ]
        }
    };
    [exact, Some(subject), Some(text)]
}

impl Store {
    /// A page of a search: the tickets that match `search` and the filters
    /// already in `conds`/`args`, best first (see the module's ranking),
    /// below `q.before_id` when set. One query per rank, each newest first
    /// with a limit, so a common word reads only as many tickets as fit
    /// on the page.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub(super) async fn search_page(
        &self,
        q: &TicketQuery,
        search: &Search,
        conds: Vec<String>,
        args: Vec<Arg>,
    ) -> Result<Vec<super::TicketView>> {
        let limit = q.limit.clamp(1, 10_000);
        let (start, before) = match q.before_id {
            Some(id) => match self.search_tier(search, id).await? {
                Some(tier) => (tier, Some(id)),
                // The cursor's ticket no longer matches: nothing below it
                // can be placed; start over at the last rank.
                None => (2, Some(id)),
            },
            None => (0, None),
        };
        let mut rows = Vec::new();
        for tier in start..3 {
            let remaining = limit - rows.len() as i64;
            if remaining <= 0 {
                break;
            }
            // SQLite: first only the newest matching messages (a window),
            // then a wider one, then all (see `window`).
            let windows: &[Option<i64>] = match (self.backend, tier) {
                (Backend::Sqlite, 1 | 2) if search.has_text() => &[Some(2_000), Some(16_000), None],
                _ => &[None],
            };
            for window in windows {
                let from = match window {
                    // Fewer matches than the window: read them all.
                    Some(w) => self.window(&fts5_query(search, tier == 1), *w).await?,
                    None => None,
                };
                let mut args = args.iter().map(Arg::clone_arg).collect::<Vec<_>>();
                let tiers = tier_conds(self.backend, search, &mut args, from);
                let Some(this) = &tiers[tier] else { break };
                let mut where_ = conds.clone();
                where_.push(this.clone());
                for higher in tiers[..tier].iter().flatten() {
                    where_.push(format!("NOT {higher}"));
                }
                if let (Some(b), true) = (before, tier == start) {
                    where_.push(format!("id < {}", bind(&mut args, Arg::Int(b))));
                }
                let l = bind(&mut args, Arg::Int(remaining));
                // The exact names go by their indexes, then sort: `id + 0`
                // keeps PostgreSQL from walking every ticket newest first
                // looking for a name no ticket has.
                let order = if tier == 0 { "id + 0" } else { "id" };
                let sql = format!(
                    "SELECT {} FROM tickets WHERE {} ORDER BY {order} DESC LIMIT {l}",
                    super::tickets::TICKET_COLUMNS,
                    where_.join(" AND "),
                );
                let found = run(sqlx::query(&sql), args).fetch_all(&self.pool).await?;
                if let Some(from) = from {
                    // The window holds every message (but the moved ones,
                    // read apart) of a ticket whose first message is in it:
                    // ids grow with time. So its answer stands if the page
                    // filled up with such tickets.
                    let last: Option<i64> = match found.last() {
                        Some(r) if found.len() as i64 == remaining => Some(r.try_get("id")?),
                        _ => None,
                    };
                    let Some(last) = last else { continue };
                    let first: Option<i64> =
                        sqlx::query_scalar("SELECT MIN(id) FROM messages WHERE ticket_id = $1")
                            .bind(last)
                            .fetch_one(&self.pool)
                            .await?;
                    if first.is_none_or(|f| f < from) {
                        continue;
                    }
                }
                rows.extend(found);
                break;
            }
        }
        self.ticket_views(&rows).await
    }

    /// The lowest row id of the newest `size` messages an FTS5 query
    /// matches, or `None` when it matches fewer (then all are read).
    /// Reading a common word's messages newest first stops there, instead
    /// of joining every one of them to its ticket.
    async fn window(&self, fts: &str, size: i64) -> Result<Option<i64>> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(rowid) AS low FROM (SELECT rowid FROM message_search \
             WHERE message_search MATCH $1 ORDER BY rowid DESC LIMIT $2)",
        )
        .bind(fts)
        .bind(size)
        .fetch_one(&self.pool)
        .await?;
        let n: i64 = row.try_get("n")?;
        Ok(if n < size { None } else { row.try_get("low")? })
    }

    /// The rank of one ticket in a search (the cursor's), `None` when it
    /// no longer matches.
    async fn search_tier(&self, search: &Search, id: i64) -> Result<Option<usize>> {
        let mut args = Vec::new();
        let tiers = tier_conds(self.backend, search, &mut args, None);
        let whens: Vec<String> = tiers
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.as_ref().map(|c| format!("WHEN {c} THEN {i}")))
            .collect();
        if whens.is_empty() {
            return Ok(None);
        }
        let n = bind(&mut args, Arg::Int(id));
        let sql = format!(
            "SELECT CAST(CASE {} END AS BIGINT) AS tier FROM tickets WHERE id = {n}",
            whens.join(" ")
        );
        let tier: Option<Option<i64>> = run(sqlx::query(&sql), args)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.try_get("tier"))
            .transpose()?;
        Ok(tier.flatten().and_then(|t| usize::try_from(t).ok()))
    }

    /// The messages that search reads, of these tickets, oldest first:
    /// (ticket id, kind `inbound`/`reply`/`note`, subject, the first
    /// [`SNIPPET_READ`] characters of the text). For saying where a hit
    /// came from: a huge mail costs a page no more than a long one.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn searched_messages(
        &self,
        ids: &[i64],
    ) -> Result<HashMap<i64, Vec<(&'static str, String, String)>>> {
        let mut by_ticket: HashMap<i64, Vec<(&'static str, String, String)>> = HashMap::new();
        for chunk in ids.chunks(200) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT ticket_id, direction, subject, substr(body, 1, {SNIPPET_READ}) AS body FROM messages WHERE ticket_id IN ({}) \
                 AND (direction IN ('in', 'note') OR (direction = 'out' AND author IS NOT NULL)) ORDER BY id",
                placeholders.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for id in chunk {
                query = query.bind(*id);
            }
            for r in query.fetch_all(&self.pool).await? {
                let kind = match r.try_get::<String, _>("direction")?.as_str() {
                    "in" => "inbound",
                    "note" => "note",
                    _ => "reply",
                };
                by_ticket.entry(r.try_get("ticket_id")?).or_default().push((
                    kind,
                    r.try_get("subject")?,
                    r.try_get("body")?,
                ));
            }
        }
        Ok(by_ticket)
    }

    /// Where the search `text` found each of these tickets (the queue
    /// page shows it under the subject).
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn found_on_page(
        &self,
        text: &str,
        tickets: &[super::TicketView],
    ) -> Result<HashMap<i64, Found>> {
        let search = Search::parse(text);
        let ids: Vec<i64> = tickets.iter().map(|t| t.id).collect();
        let messages = self.searched_messages(&ids).await?;
        Ok(tickets
            .iter()
            .filter_map(|t| {
                let hit = HitTicket {
                    id: t.id,
                    number: &t.number,
                    customer: &t.customer,
                    sender: &t.sender,
                    subject: &t.subject,
                    language: t.language,
                };
                let thread = messages.get(&t.id).map(Vec::as_slice).unwrap_or(&[]);
                search.found(&hit, thread).map(|f| (t.id, f))
            })
            .collect())
    }

    /// Adds the stems of the messages queued by migration 0017 (or by a
    /// change of a message's text) to SQLite's index, a batch per
    /// transaction; returns how many. Nothing to do on PostgreSQL.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn restem_pending(&self) -> Result<usize> {
        if self.backend != Backend::Sqlite {
            return Ok(0);
        }
        // Nothing queued (every opening but the first after 0017): no write.
        let queued: Option<i64> =
            sqlx::query_scalar("SELECT message_id FROM message_search_restem LIMIT 1")
                .fetch_optional(&self.pool)
                .await?;
        if queued.is_none() {
            return Ok(0);
        }
        let mut done = 0;
        loop {
            let mut tx = self.begin("").await?;
            let rows = sqlx::query(
                "SELECT r.message_id, m.subject, m.body, t.language FROM message_search_restem r \
                 JOIN messages m ON m.id = r.message_id JOIN tickets t ON t.id = m.ticket_id \
                 ORDER BY r.message_id LIMIT $1",
            )
            .bind(RESTEM_BATCH)
            .fetch_all(&mut *tx.tx)
            .await?;
            if rows.is_empty() {
                // Queued messages deleted since: nothing left to stem.
                sqlx::query("DELETE FROM message_search_restem")
                    .execute(&mut *tx.tx)
                    .await?;
                tx.commit().await?;
                return Ok(done);
            }
            let mut last = 0;
            for r in &rows {
                let id: i64 = r.try_get("message_id")?;
                let language: Language = super::value(r, "language")?;
                tx.write_stems(
                    id,
                    language,
                    &r.try_get::<String, _>("subject")?,
                    &r.try_get::<String, _>("body")?,
                )
                .await?;
                last = id;
            }
            sqlx::query("DELETE FROM message_search_restem WHERE message_id <= $1")
                .bind(last)
                .execute(&mut *tx.tx)
                .await?;
            tx.commit().await?;
            done += rows.len();
        }
    }
}

impl Tx {
    /// Adds the stems of a message just written to SQLite's index, in
    /// this transaction (the trigger of migration 0017 wrote its words).
    /// Nothing on PostgreSQL, whose trigger does it all.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub(super) async fn index_message(
        &mut self,
        message_id: i64,
        ticket_id: i64,
        subject: &str,
        body: &str,
    ) -> Result<()> {
        if self.tx.backend_name() != "SQLite" {
            return Ok(());
        }
        let language: Option<String> =
            sqlx::query_scalar("SELECT language FROM tickets WHERE id = $1")
                .bind(ticket_id)
                .fetch_optional(&mut *self.tx)
                .await?;
        let language = language.and_then(|l| l.parse().ok()).unwrap_or_default();
        self.write_stems(message_id, language, subject, body).await
    }

    async fn write_stems(
        &mut self,
        message_id: i64,
        language: Language,
        subject: &str,
        body: &str,
    ) -> Result<()> {
        let (s, b) = (index_stems(subject, language), index_stems(body, language));
        if s.is_empty() && b.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "UPDATE message_search SET subject_stems = $2, body_stems = $3 WHERE rowid = $1",
        )
        .bind(message_id)
        .bind(s)
        .bind(b)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}

/// Binds the built query's values in order. The statement is not kept
/// prepared: PostgreSQL then plans each search with its words (a custom
/// plan), folding the words' tsquery into a constant the planner weighs
/// (common or rare) instead of a generic plan that would build the tsquery
/// again for every row.
fn run<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    args: Vec<Arg>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    let mut query = query.persistent(false);
    for a in args {
        query = match a {
            Arg::Text(t) => query.bind(t),
            Arg::Int(i) => query.bind(i),
        };
    }
    query
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fts5_queries_are_built_from_words_only() {
        let s = Search::parse("facturen \"geen verbinding\" NEAR( x:\"yy*");
        let q = fts5_query(&s, false);
        assert!(q.contains("(\"facturen\" OR \"factur\")"), "{q}");
        assert!(q.contains("{subject body} : \"geen verbinding\""), "{q}");
        assert!(q.contains("(\"near\""), "{q}");
        assert!(q.contains("\"yy\"*"), "{q}");
        let q = fts5_query(&Search::parse("printer"), true);
        assert!(q.starts_with("{subject subject_stems} : ("), "{q}");
    }
}
