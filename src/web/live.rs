//! The live side of the workspace: `GET /events` (server-sent events from
//! the process's [`crate::live::Hub`]), presence heartbeats
//! (`POST /tickets/{number}/presence`), and the collision check before a
//! reply goes out.
//!
//! The stream sends, as SSE `event:` kinds:
//! - `ticket` — one audit event (`id:` is its durable id in
//!   `ticket_events`; data `{id, ticket, field, old, new, actor, at}`);
//!   with `?ticket=`, only that ticket's (an `id:` without data moves the
//!   stream's id past the others);
//! - `counts` — the queue counts as this agent's queue page shows them,
//!   once after each burst;
//! - `presence` — who has the ticket of `?ticket=` open (`{ticket,
//!   viewers: [{agent, name, composing}]}`);
//! - `reset` — more was missed than is replayed: reload;
//! - `end` — the session ended or the agent was disabled; the stream closes.
//!
//! A client reconnecting with `Last-Event-ID` (or a page naming
//! `?after=`, the cursor it was rendered at) first gets every event after
//! it. Authorised like every handler ([`Caller`]); the session or token is
//! checked again every few seconds without counting as activity.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use minijinja::context;
use serde_json::json;
use tokio::sync::{broadcast, mpsc};

use super::auth::Caller;
use super::{AppState, WebError};
use crate::agents::Action;
use crate::live::Push;
use crate::store::{ThreadEntry, Viewer};

/// How often an open stream checks that its session or token still counts.
const RECHECK: Duration = Duration::from_secs(5);
/// The most events replayed to a client that reconnects; past that it is
/// told to reload.
const REPLAY_MAX: i64 = 1000;
/// The browser's wait before it reconnects a dropped stream.
const RETRY: Duration = Duration::from_secs(2);

/// The routes of this file.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/events", get(events))
        .route("/tickets/{number}/presence", post(presence))
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct EventsQuery {
    /// The cursor the page was rendered at (`Last-Event-ID` wins).
    #[serde(default)]
    after: Option<i64>,
    /// The ticket whose presence the page shows.
    #[serde(default)]
    ticket: Option<String>,
}

/// How a stream proves, again and again, that it may go on.
struct Admission {
    session: Option<String>,
    token: Option<String>,
}

fn bearer_hash(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| crate::agents::secret_hash(token.trim()))
}

/// `GET /events`: the live stream.
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Query(q): Query<EventsQuery>,
) -> Result<Response, WebError> {
    caller.require(Action::ReadTickets)?;
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .or(q.after)
        .filter(|n| *n >= 0);
    let ticket = q
        .ticket
        .map(|t| t.trim().to_ascii_uppercase())
        .filter(|t| !t.is_empty());
    let admission = Admission {
        session: caller.session.as_ref().map(|s| s.id_hash.clone()),
        token: bearer_hash(&headers),
    };
    let counted = state.live.client(&caller.agent.email).ok_or_else(|| {
        WebError::Busy(format!(
            "more than {} live pages are open for {}: close some",
            crate::live::MAX_STREAMS_PER_AGENT,
            caller.agent.email
        ))
    })?;
    let (tx, rx) = mpsc::channel::<Event>(64);
    tokio::spawn(stream(state, caller, last, ticket, admission, tx, counted));
    let body = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|e| (Ok::<_, Infallible>(e), rx))
    });
    let mut res = Sse::new(body)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    // A reverse proxy must pass each event on at once.
    res.headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(res)
}

fn ticket_event(e: &crate::store::LiveEvent) -> Event {
    Event::default()
        .event("ticket")
        .id(e.id.to_string())
        .data(json!(e).to_string())
}

fn presence_event(ticket: &str, viewers: &[Viewer]) -> Event {
    Event::default()
        .event("presence")
        .data(json!({ "ticket": ticket, "viewers": viewers }).to_string())
}

/// Sends the events of `events` after `*last` (only those of ticket
/// `only`, when given; the stream's id still moves past the others, by an
/// event without data that the browser does not dispatch). Returns whether
/// any was sent, or `None` when the client is gone.
async fn send_events(
    tx: &mpsc::Sender<Event>,
    events: &[crate::store::LiveEvent],
    only: Option<&str>,
    last: &mut i64,
) -> Option<bool> {
    let mut sent = false;
    let mut unsent = None;
    for e in events {
        if e.id <= *last {
            continue;
        }
        *last = e.id;
        if only.is_none_or(|t| t == e.ticket) {
            tx.send(ticket_event(e)).await.ok()?;
            sent = true;
            unsent = None;
        } else {
            unsent = Some(e.id);
        }
    }
    if let Some(id) = unsent {
        tx.send(Event::default().id(id.to_string())).await.ok()?;
    }
    Some(sent)
}

/// Sends the events after `last` up to the hub's cursor; too many: a
/// `reset`. Returns the new `last`, or `None` when the client is gone.
async fn replay(
    state: &AppState,
    tx: &mpsc::Sender<Event>,
    only: Option<&str>,
    last: i64,
    upto: i64,
) -> Option<i64> {
    if last >= upto {
        return Some(last);
    }
    let events = match state
        .live
        .store()
        .events_between(last, upto, REPLAY_MAX + 1)
        .await
    {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!("live updates: replay: {e}");
            tx.send(Event::default().event("reset").data("{}"))
                .await
                .ok()?;
            return Some(upto);
        }
    };
    if events.len() as i64 > REPLAY_MAX {
        tx.send(Event::default().event("reset").data("{}"))
            .await
            .ok()?;
        return Some(upto);
    }
    let mut last = last;
    send_events(tx, &events, only, &mut last).await?;
    Some(upto.max(last))
}

async fn send_counts(state: &AppState, tx: &mpsc::Sender<Event>, agent: &str) -> Option<()> {
    match state.live.counts().await {
        Ok(c) => tx
            .send(
                Event::default()
                    .event("counts")
                    .data(c.for_agent(agent).to_string()),
            )
            .await
            .ok(),
        Err(e) => {
            tracing::debug!("live updates: counts: {e}");
            Some(())
        }
    }
}

/// One client's stream, until it goes, its admission ends, or shutdown.
async fn stream(
    state: AppState,
    caller: Caller,
    after: Option<i64>,
    ticket: Option<String>,
    admission: Admission,
    tx: mpsc::Sender<Event>,
    _counted: crate::live::ClientGuard,
) {
    let hub = state.live.clone();
    let mut pushes = hub.subscribe();
    let mut closed = hub.closed();
    let Some(upto) = hub.cursor().await else {
        return;
    };
    let agent = caller.agent.email.clone();
    let run = async {
        tx.send(Event::default().retry(RETRY).comment("live"))
            .await
            .ok()?;
        let mut last = replay(&state, &tx, ticket.as_deref(), after.unwrap_or(upto), upto).await?;
        send_counts(&state, &tx, &agent).await?;
        if let Some(t) = &ticket {
            tx.send(presence_event(t, &hub.viewers(t))).await.ok()?;
        }
        let mut check = tokio::time::interval(RECHECK);
        check.tick().await;
        loop {
            tokio::select! {
                () = tx.closed() => return None::<()>,
                p = pushes.recv() => match p {
                    Ok(p) => match &*p {
                        Push::Events(events, counts) => {
                            // A ticket's page hears of its ticket only, and needs no counts.
                            let sent = send_events(&tx, events, ticket.as_deref(), &mut last).await?;
                            if sent && ticket.is_none() {
                                tx.send(Event::default().event("counts").data(counts.for_agent(&agent).to_string())).await.ok()?;
                            }
                        }
                        Push::Presence(t, viewers) => {
                            if ticket.as_deref() == Some(t.as_str()) {
                                tx.send(presence_event(t, viewers)).await.ok()?;
                            }
                        }
                    },
                    // Too slow to keep up: what was missed comes from the table.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        last = replay(&state, &tx, ticket.as_deref(), last, hub.cursor_now()).await?;
                        send_counts(&state, &tx, &agent).await?;
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                _ = check.tick() => {
                    let idle = state.idle_minutes.min(60 * 24 * 365);
                    let since = crate::store::stamp(chrono::Utc::now() - chrono::Duration::minutes(idle as i64));
                    match state.live.store().still_admitted(admission.session.as_deref(), admission.token.as_deref(), &since).await {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::info!(agent = agent, "live updates: session ended; stream closed");
                            let _ = tx.send(Event::default().event("end").data("{}")).await;
                            return None;
                        }
                        Err(e) => tracing::debug!("live updates: admission check: {e}"),
                    }
                }
            }
        }
    };
    tokio::select! {
        _ = run => {}
        _ = closed.wait_for(|c| *c) => {}
    }
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct PresenceForm {
    #[serde(default)]
    client: String,
    #[serde(default)]
    composing: String,
    #[serde(default)]
    leave: String,
}

/// A tab's id: what [`new_client`] makes (letters and digits).
fn valid_client(c: &str) -> bool {
    (8..=64).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn new_client() -> Result<String, WebError> {
    crate::agents::new_secret()
        .map(|s| {
            s.chars()
                .filter(char::is_ascii_alphanumeric)
                .take(16)
                .collect()
        })
        .map_err(|e| WebError::Internal(e.into()))
}

/// `POST /tickets/{number}/presence` (`client`, `composing=1`, `leave=1`):
/// a tab's heartbeat on a ticket, or its leaving. 204.
pub async fn presence(
    State(state): State<AppState>,
    caller: Caller,
    Path(number): Path<String>,
    axum::Form(form): axum::Form<PresenceForm>,
) -> Result<Response, WebError> {
    caller.require(Action::ReadTickets)?;
    if !valid_client(&form.client) {
        return Err(WebError::Unprocessable(
            "client: the page's id (letters and digits)".into(),
        ));
    }
    let number = number.trim().to_ascii_uppercase();
    let store = state.live.store();
    if form.leave == "1" {
        store
            .leave_presence(&number, &caller.agent.email, &form.client)
            .await?;
    } else {
        if !store.ticket_exists(&number).await? {
            return Err(WebError::NotFound(format!("ticket {number} not found")));
        }
        store
            .touch_presence(
                &number,
                &caller.agent.email,
                &caller.agent.name,
                &form.client,
                form.composing == "1",
            )
            .await?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// What a page needs to go live, as the template `live.html` reads it.
/// `after` is the hub's cursor read *before* the page's data; on a ticket
/// page this also records the agent's presence and says who else is there.
///
/// # Errors
///
/// On database failure.
pub async fn page(
    state: &AppState,
    caller: &Caller,
    after: i64,
    ticket: Option<(&str, &[ThreadEntry])>,
) -> Result<minijinja::Value, WebError> {
    let Some((number, thread)) = ticket else {
        return Ok(context! {
            after => after, ticket => "", client => "", seen => 0, me => caller.agent.email,
            viewers => Vec::<Viewer>::new(),
        });
    };
    let client = new_client()?;
    let store = state.live.store();
    store
        .touch_presence(
            number,
            &caller.agent.email,
            &caller.agent.name,
            &client,
            false,
        )
        .await?;
    let since = crate::store::stamp(
        chrono::Utc::now()
            - chrono::Duration::from_std(crate::live::PRESENCE_STALE)
                .unwrap_or(chrono::Duration::seconds(45)),
    );
    let viewers: Vec<Viewer> = store
        .presence_since(&since, Some(number))
        .await?
        .remove(number)
        .unwrap_or_default()
        .into_iter()
        .filter(|v| v.agent != caller.agent.email)
        .collect();
    Ok(context! {
        after => after, ticket => number, client => client,
        seen => thread.iter().map(|m| m.id).max().unwrap_or(0),
        me => caller.agent.email, viewers => viewers,
    })
}

/// The messages on a ticket after `seen` (a message's row id) that an
/// agent about to reply should see first: mail from the customer, and
/// replies or notes by other agents.
///
/// # Errors
///
/// 404 for an unknown ticket; on database failure.
pub async fn arrived_since(
    state: &AppState,
    caller: &Caller,
    number: &str,
    seen: i64,
) -> Result<Vec<ThreadEntry>, WebError> {
    let (_, thread) = state.store.ticket(number).await?;
    Ok(thread
        .into_iter()
        .filter(|m| m.id > seen)
        .filter(|m| match m.kind() {
            "inbound" => true,
            "reply" | "note" => m.author.as_deref() != Some(caller.agent.email.as_str()),
            _ => false,
        })
        .collect())
}

/// The reply form's collision check: when the form says what its writer
/// had seen (`seen_message`) and something arrived since, the page that
/// asks before sending (409); `None` to send.
///
/// # Errors
///
/// As [`arrived_since`], and when the page does not render.
pub async fn ask_before_reply(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    number: &str,
    form: &std::collections::HashMap<String, String>,
) -> Result<Option<Response>, WebError> {
    let Some(seen) = form
        .get("seen_message")
        .and_then(|s| s.trim().parse::<i64>().ok())
    else {
        return Ok(None);
    };
    let arrived = arrived_since(state, caller, number, seen).await?;
    if arrived.is_empty() {
        return Ok(None);
    }
    let (t, thread) = state.store.ticket(number).await?;
    // What the agent wrote is kept as their draft, so "back" loses nothing
    // (with or without the page's script having saved it).
    let text = form.get("text").cloned().unwrap_or_default();
    if !text.trim().is_empty() && text.chars().count() <= super::drafts::MAX_DRAFT_CHARS {
        state
            .store
            .save_draft(
                &caller.agent.email,
                &t.number,
                crate::store::DraftKind::Reply,
                &text,
            )
            .await?;
    }
    let lang = super::pages::language(headers, Some(&caller.agent));
    let ctx = context! {
        number => t.number,
        subject => t.subject,
        arrived => arrived.iter().map(|m| context! {
            kind => m.kind(), from => m.from, author => m.author, created_at => m.created_at, text => m.body,
        }).collect::<Vec<_>>(),
        text => text,
        seen => thread.iter().map(|m| m.id).max().unwrap_or(seen),
        ..super::pages::frame(Some(caller), lang, &format!("/tickets/{}", t.number))
    };
    let html = super::pages::render(state, "collision.html", ctx)?;
    Ok(Some((StatusCode::CONFLICT, Html(html)).into_response()))
}

/// The API's collision check: with `seen_message` in the body and
/// something arrived since, 409 with what arrived; without the field the
/// reply goes as before.
///
/// # Errors
///
/// 422 for a `seen_message` that is not a number; as [`arrived_since`].
pub async fn api_collision(
    state: &AppState,
    caller: &Caller,
    number: &str,
    body: &Bytes,
) -> Result<Option<Response>, WebError> {
    let Ok(serde_json::Value::Object(o)) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Ok(None);
    };
    let seen = match o.get("seen_message") {
        None | Some(serde_json::Value::Null) => return Ok(None),
        Some(v) => v.as_i64().ok_or_else(|| {
            WebError::Unprocessable(
                "seen_message: the id of the latest message you saw (a number)".into(),
            )
        })?,
    };
    let arrived = arrived_since(state, caller, number, seen).await?;
    if arrived.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        (
            StatusCode::CONFLICT,
            Json(json!({
                "error": "new messages arrived on this ticket since seen_message; read them, then send again with the latest id",
                "arrived": arrived.iter().map(super::api::message_json).collect::<Vec<_>>(),
                "latest": arrived.iter().map(|m| m.id).max(),
            })),
        )
            .into_response(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Language;

    /// The live parts and the collision page render in every language,
    /// with the customer's and agents' words escaped.
    #[test]
    fn the_pages_render_in_all_four_languages_escaped() {
        let env = super::super::pages::templates().unwrap();
        for l in Language::ALL {
            let live = env
                .get_template("live.html")
                .unwrap()
                .render(context! {
                    live => context! {
                        after => 7, ticket => "CS-000001", client => "abcdefgh12345678", seen => 3, me => "a@desk.example",
                        viewers => vec![Viewer { agent: "b@desk.example".into(), name: "<b>B</b>".into(), composing: true }],
                    },
                    ..super::super::pages::frame(None, l, "/tickets/CS-000001")
                })
                .unwrap();
            assert!(live.contains("data-after=\"7\"") && live.contains("/assets/live.js"));
            assert!(live.contains("&lt;b&gt;B&lt;&#x2f;b&gt;"), "{live}");
            assert!(live.contains(crate::web::i18n::text(l, "live_writing")));
            let page = env
                .get_template("collision.html")
                .unwrap()
                .render(context! {
                    number => "CS-000001", subject => "<i>Storing</i>",
                    arrived => vec![context! { kind => "inbound", from => "k@x.example", author => None::<String>,
                        created_at => "2026-12-06T10:00:00.000Z", text => "<script>x</script>" }],
                    text => "Mijn <antwoord>", seen => 9,
                    ..super::super::pages::frame(None, l, "/tickets/CS-000001")
                })
                .unwrap();
            assert!(!page.contains("<script>x") && page.contains("&lt;script&gt;x"));
            assert!(page.contains("Mijn &lt;antwoord&gt;</textarea>"));
            assert!(page.contains("name=\"seen_message\" value=\"9\""));
            assert!(page.contains(crate::web::i18n::text(l, "collision_send_anyway")));
        }
    }

    #[test]
    fn a_tab_id_is_letters_and_digits() {
        assert!(valid_client("abcDEF0123456789"));
        assert!(!valid_client("short"));
        assert!(!valid_client("abc-def-0123456789"));
        assert!(!valid_client(&"a".repeat(65)));
        let made = new_client().unwrap();
        assert!(valid_client(&made), "{made}");
    }
}
