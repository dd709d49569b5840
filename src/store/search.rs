//! Full-text search in the store: a parsed [`Search`] as FTS5 (SQLite) or
//! `tsquery` (PostgreSQL), combined with the workspace's filters, ranked
//! and paged; the stems SQLite's index needs (see migration 0017).
//!
//! Ranking: a ticket the whole text names (number, sender, customer) comes
//! first, then tickets with every word in a subject, then tickets with every
//! word in one message's text; within each, the newest first. The order is
//! stable, so "next page" continues below the last ticket shown (keyset on
//! rank and id, never OFFSET).

use std::collections::HashMap;

use sqlx::Row;

use super::workspace::{Arg, TicketQuery};
use super::{Backend, Result, Store, Tx};
use crate::domain::Language;
use crate::search::{index_stems, Found, HitTicket, Search, Term};

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

/// `(tier, ticket id)` rows: 0 for a ticket the text names, 1 for a word
/// match in a subject, 2 for one in a message's text. `only` restricts
/// them to one ticket (the cursor's).
fn hits_sql(backend: Backend, s: &Search, args: &mut Vec<Arg>, only: Option<i64>) -> String {
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
    let only_ticket = |args: &mut Vec<Arg>, column: &str| match only {
        Some(id) => format!(" AND {column} = {}", bind(args, Arg::Int(id))),
        None => String::new(),
    };
    let mut selects = Vec::new();
    if !exact.is_empty() {
        let o = only_ticket(args, "id");
        selects.push(format!(
            "SELECT id AS tid, 0 AS tier FROM tickets WHERE ({}){o}",
            exact.join(" OR ")
        ));
    }
    if s.has_text() {
        match backend {
            Backend::Sqlite => {
                for (tier, subject_only) in [(1, true), (2, false)] {
                    let q = bind(args, Arg::Text(fts5_query(s, subject_only)));
                    let o = only_ticket(args, "m.ticket_id");
                    selects.push(format!(
                        "SELECT m.ticket_id AS tid, {tier} AS tier FROM message_search \
                         JOIN messages m ON m.id = message_search.rowid \
                         WHERE message_search MATCH {q}{o}"
                    ));
                }
            }
            Backend::Postgres => {
                let q = tsquery(s, args);
                for (tier, cond) in [
                    (1, format!("m.search @@ sd_in_subject({q})")),
                    (2, format!("m.search @@ {q}")),
                ] {
                    let o = only_ticket(args, "m.ticket_id");
                    selects.push(format!(
                        "SELECT m.ticket_id AS tid, {tier} AS tier FROM messages m WHERE {cond}{o}"
                    ));
                }
            }
        }
    }
    if selects.is_empty() {
        // Nothing the text could match: no rows.
        selects.push("SELECT id AS tid, 0 AS tier FROM tickets WHERE 1 = 0".into());
    }
    selects.join(" UNION ALL ")
}

impl Store {
    /// A page of a search: the tickets that match `search` and the filters
    /// already in `conds`/`args`, best first (see the module's ranking),
    /// below `q.before_id` when set.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub(super) async fn search_page(
        &self,
        q: &TicketQuery,
        search: &Search,
        mut conds: Vec<String>,
        mut args: Vec<Arg>,
    ) -> Result<Vec<super::TicketView>> {
        if let Some(before) = q.before_id {
            let tier = self.search_tier(search, before).await?.unwrap_or(2);
            let t = bind(&mut args, Arg::Int(tier));
            let b = bind(&mut args, Arg::Int(before));
            conds.push(format!(
                "(best.tier > {t} OR (best.tier = {t} AND id < {b}))"
            ));
        }
        let hits = hits_sql(self.backend, search, &mut args, None);
        let limit = bind(&mut args, Arg::Int(q.limit.clamp(1, 10_000)));
        let sql = format!(
            "WITH hits AS ({hits}), best AS (SELECT tid, MIN(tier) AS tier FROM hits GROUP BY tid) \
             SELECT {} FROM best JOIN tickets ON tickets.id = best.tid {} \
             ORDER BY best.tier, tickets.id DESC LIMIT {limit}",
            super::tickets::TICKET_COLUMNS,
            if conds.is_empty() {
                String::new()
            } else {
                format!("WHERE {}", conds.join(" AND "))
            },
        );
        let rows = run(sqlx::query(&sql), args).fetch_all(&self.pool).await?;
        self.ticket_views(&rows).await
    }

    /// The rank of one ticket in a search (the cursor's), `None` when it
    /// no longer matches.
    async fn search_tier(&self, search: &Search, id: i64) -> Result<Option<i64>> {
        let mut args = Vec::new();
        let hits = hits_sql(self.backend, search, &mut args, Some(id));
        let sql = format!("SELECT CAST(MIN(tier) AS BIGINT) AS tier FROM ({hits}) h");
        let row = run(sqlx::query(&sql), args).fetch_one(&self.pool).await?;
        Ok(row.try_get("tier")?)
    }

    /// The messages that search reads, of these tickets, oldest first:
    /// (ticket id, kind `inbound`/`reply`/`note`, subject, text). For
    /// saying where a hit came from.
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
                "SELECT ticket_id, direction, subject, body FROM messages WHERE ticket_id IN ({}) \
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

/// Binds the built query's values in order.
fn run<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    args: Vec<Arg>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
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
