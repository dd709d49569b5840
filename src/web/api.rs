//! The JSON API under `/api/`: the same tickets as `tickets list --json`,
//! one ticket with its messages and history, and the changes agents make.
//! Every handler takes a [`Caller`] (session or bearer token); errors are
//! JSON `{"error": "..."}` with 400 (unreadable), 401, 403, 404 or 422.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::auth::Caller;
use super::tickets::Patch;
use super::{AppState, WebError};
use crate::agents::Action;
use crate::store::{ThreadEntry, TicketQuery, TicketView, View};

/// The default and the largest page of `GET /api/tickets`.
const DEFAULT_LIMIT: i64 = 1000;
const MAX_LIMIT: i64 = 10_000;

fn parse<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, WebError>
where
    T::Err: std::fmt::Display,
{
    value
        .trim()
        .parse()
        .map_err(|e| WebError::BadRequest(format!("{key}: {e}")))
}

/// A ticket number or a row id as the cursor `before`.
pub fn cursor(value: &str) -> Option<i64> {
    let digits = value.rsplit('-').next()?.trim();
    digits.parse().ok()
}

/// `GET /api/me`: who the caller is.
pub async fn me(caller: Caller) -> Json<Value> {
    Json(json!({
        "email": caller.agent.email,
        "name": caller.agent.name,
        "role": caller.agent.role,
        "csrf_token": caller.session.as_ref().map(|s| s.csrf_token.clone()),
    }))
}

/// `GET /api/agents`: every agent (admins only).
pub async fn agents(
    State(state): State<AppState>,
    _: super::auth::Admin,
) -> Result<Json<Value>, WebError> {
    Ok(Json(json!(state.store.agents().await?)))
}

/// `GET /api/tickets`: filters `category`, `status`, `customer`, `q`,
/// `language`, `chargeable`, `view`, `limit`, and `before` (a ticket
/// number: the page after it). Newest first; with `q`, best first.
pub async fn tickets(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Vec<TicketView>>, WebError> {
    caller.require(Action::ReadTickets)?;
    let mut q = TicketQuery {
        limit: DEFAULT_LIMIT,
        ..TicketQuery::default()
    };
    for (key, value) in &params {
        if value.trim().is_empty() {
            continue;
        }
        match key.as_str() {
            "category" => q.category = Some(parse(key, value)?),
            "status" => q.status = Some(parse(key, value)?),
            "customer" => q.customer = Some(value.clone()),
            // Full-text over the thread, or a number, customer or sender;
            // best first (store::search).
            "q" => q.text = Some(value.clone()),
            "language" => q.language = Some(parse(key, value)?),
            "chargeable" => q.chargeable = Some(parse(key, value)?),
            "limit" => {
                let n: i64 = parse(key, value)?;
                if !(1..=MAX_LIMIT).contains(&n) {
                    return Err(WebError::BadRequest(format!(
                        "limit: use 1 to {MAX_LIMIT}"
                    )));
                }
                q.limit = n;
            }
            "before" => {
                q.before_id = Some(cursor(value).ok_or_else(|| {
                    WebError::BadRequest("before: use a ticket number like CS-000123".into())
                })?)
            }
            "view" => q.view = view(value, &caller.agent.email)?,
            _ => {
                return Err(WebError::BadRequest(format!(
                    "unknown filter {key:?}: use category, status, customer, q, language, chargeable, view, limit or before"
                )))
            }
        }
    }
    Ok(Json(state.store.ticket_page(&q).await?))
}

/// A view's name as the pages and the API write it.
pub fn view(name: &str, me: &str) -> Result<View, WebError> {
    Ok(match name {
        "open" => View::Open,
        "mine" => View::Mine(me.to_string()),
        "unassigned" => View::Unassigned,
        "awaiting_approval" => View::AwaitingApproval,
        "on_hold" => View::OnHold,
        "waiting" => View::Waiting,
        "to_check" => View::ToCheck,
        "due_soon" => View::DueSoon,
        "overdue" => View::Overdue,
        "everything" | "all" => View::Everything,
        other => {
            return Err(WebError::BadRequest(format!(
                "view {other:?}: use open, mine, unassigned, awaiting_approval, on_hold, waiting, to_check, due_soon, overdue or everything"
            )))
        }
    })
}

/// One thread message as the API shows it.
pub fn message_json(m: &ThreadEntry) -> Value {
    json!({
        "id": m.id,
        "kind": m.kind(),
        "from": m.from,
        "author": m.author,
        "outsider": m.outsider,
        "created_at": m.created_at,
        "subject": m.subject,
        "text": m.body,
        "message_id": m.message_id,
    })
}

/// `GET /api/tickets/{number}`: the ticket, its `messages` in order and its `events`.
pub async fn ticket(
    State(state): State<AppState>,
    caller: Caller,
    Path(number): Path<String>,
) -> Result<Json<Value>, WebError> {
    caller.require(Action::ReadTickets)?;
    let (t, thread) = state.store.ticket(&number).await?;
    let events = state.store.ticket_events(&t.number).await?;
    let mut v = serde_json::to_value(&t).map_err(|e| WebError::Internal(e.into()))?;
    v["messages"] = thread.iter().map(message_json).collect();
    v["events"] = json!(events);
    v["merged_into"] = json!(state
        .store
        .merge_state(&t.number)
        .await?
        .merged_into
        .map(|m| m.into));
    Ok(Json(v))
}

/// The JSON object of a request body.
fn object(body: &Bytes) -> Result<serde_json::Map<String, Value>, WebError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(WebError::BadRequest("send one JSON object".into())),
        Err(e) => Err(WebError::BadRequest(format!("the body is not JSON: {e}"))),
    }
}

fn text_of(body: &Bytes) -> Result<String, WebError> {
    let o = object(body)?;
    match o.get("text") {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(WebError::Unprocessable("text: must be a string".into())),
        None => Err(WebError::Unprocessable(
            "text: missing; send {\"text\": \"...\"}".into(),
        )),
    }
}

/// `POST /api/tickets/{number}/replies` `{"text"}`: queued, 202. With
/// `"seen_message": ID` (the `id` of the latest message the writer saw),
/// 409 and what arrived when a customer's mail or another agent's reply or
/// note came since.
pub async fn reply(
    State(state): State<AppState>,
    caller: Caller,
    Path(number): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let text = text_of(&body)?;
    // With `seen_message`: 409 when something arrived since.
    if let Some(conflict) = super::live::api_collision(&state, &caller, &number, &body).await? {
        return Ok(conflict);
    }
    let message_id = super::tickets::reply(&state, &caller, &number, &text).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "queued": true, "message_id": message_id })),
    )
        .into_response())
}

/// `POST /api/tickets/{number}/notes` `{"text"}`: 201.
pub async fn note(
    State(state): State<AppState>,
    caller: Caller,
    Path(number): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let text = text_of(&body)?;
    super::tickets::note(&state, &caller, &number, &text).await?;
    Ok((StatusCode::CREATED, Json(json!({ "added": true }))).into_response())
}

/// Reads a PATCH body: every key known, every value of the right kind.
pub fn patch_of(o: &serde_json::Map<String, Value>) -> Result<Patch, WebError> {
    fn vocab<T: std::str::FromStr<Err = crate::domain::UnknownValue>>(
        key: &str,
        v: &Value,
    ) -> Result<T, WebError> {
        v.as_str()
            .ok_or_else(|| WebError::Unprocessable(format!("{key}: must be a string")))?
            .parse()
            .map_err(|e| WebError::Unprocessable(format!("{key}: {e}")))
    }
    let mut p = Patch::default();
    for (key, v) in o {
        match key.as_str() {
            "category" => p.category = Some(vocab(key, v)?),
            "status" => p.status = Some(vocab(key, v)?),
            "priority" => p.priority = Some(vocab(key, v)?),
            "chargeable_reason" => {
                p.chargeable_reason = Some(if v.is_null() { None } else { Some(vocab(key, v)?) })
            }
            "assignee" => {
                p.assignee = Some(match v {
                    Value::Null => None,
                    Value::String(s) => Some(s.clone()),
                    _ => {
                        return Err(WebError::Unprocessable(
                            "assignee: an agent's address or null".into(),
                        ))
                    }
                })
            }
            "charge_approved" => {
                p.charge_approved = Some(match v {
                    Value::Null => None,
                    Value::Bool(b) => Some(*b),
                    _ => {
                        return Err(WebError::Unprocessable(
                            "charge_approved: true, false or null".into(),
                        ))
                    }
                })
            }
            other => {
                return Err(WebError::Unprocessable(format!(
                    "unknown field {other:?}: use category, chargeable_reason, status, assignee or charge_approved"
                )))
            }
        }
    }
    if p.is_empty() {
        return Err(WebError::Unprocessable(
            "nothing to change: send category, chargeable_reason, status, assignee or charge_approved".into(),
        ));
    }
    Ok(p)
}

/// `PATCH /api/tickets/{number}`: 200 with the ticket and what changed.
pub async fn change(
    State(state): State<AppState>,
    caller: Caller,
    Path(number): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, WebError> {
    let patch = patch_of(&object(&body)?)?;
    let changed = super::tickets::change(&state, &caller, &number, &patch).await?;
    let (t, _) = state.store.ticket(&number).await?;
    let mut v = serde_json::to_value(&t).map_err(|e| WebError::Internal(e.into()))?;
    v["changed"] = changed
        .iter()
        .map(|(field, old, new)| json!({ "field": field, "old": old, "new": new }))
        .collect();
    Ok(Json(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patch_names_what_is_wrong() {
        let p = |s: &str| {
            patch_of(
                serde_json::from_str::<Value>(s)
                    .unwrap()
                    .as_object()
                    .unwrap(),
            )
        };
        let ok = p(r#"{"category": "question", "chargeable_reason": null, "assignee": null, "charge_approved": true}"#).unwrap();
        assert_eq!(ok.category, Some(crate::domain::Category::Question));
        assert_eq!(ok.chargeable_reason, Some(None));
        assert_eq!(ok.assignee, Some(None));
        assert_eq!(ok.charge_approved, Some(Some(true)));
        for (body, says) in [
            (r#"{"category": "urgent"}"#, "is not a category"),
            (r#"{"status": 3}"#, "status: must be a string"),
            (r#"{"charge_approved": "yes"}"#, "true, false or null"),
            (r#"{"colour": "red"}"#, "unknown field"),
            (r#"{}"#, "nothing to change"),
        ] {
            let e = p(body).unwrap_err();
            assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
            assert!(e.message().contains(says), "{body}: {}", e.message());
        }
        assert_eq!(cursor("CS-000123"), Some(123));
        assert_eq!(cursor("77"), Some(77));
        assert_eq!(cursor("CS-x"), None);
    }
}
