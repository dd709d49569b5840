//! Merging two tickets of one customer, and undoing it: a form on the
//! ticket page and `POST /api/tickets/{number}/merge {"into": "CS-..."}`
//! (`.../merge/undo` to undo). Any agent who works tickets may; the store
//! does the merge in one transaction ([`crate::store::Store::merge_tickets`]).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use axum::{Form, Json, Router};
use serde_json::{json, Value};

use super::auth::{Caller, PageCaller};
use super::pages::PageError;
use super::{AppState, WebError};
use crate::agents::Action;
use crate::store::{MergeError, Merged};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/tickets/{number}/merge", post(merge_api))
        .route("/api/tickets/{number}/merge/undo", post(undo_api))
        .route("/tickets/{number}/merge", post(merge_form))
        .route("/tickets/{number}/unmerge", post(undo_form))
}

impl From<MergeError> for WebError {
    fn from(e: MergeError) -> Self {
        match e {
            MergeError::NotFound(n) => WebError::NotFound(format!("ticket {n} not found")),
            MergeError::Store(e) => e.into(),
            other => WebError::Unprocessable(other.to_string()),
        }
    }
}

/// Merges `from` into `into` for this caller.
///
/// # Errors
///
/// 403 for a role that does not work tickets, 404 for an unknown ticket,
/// 422 for a merge that is refused (different customers, into itself,
/// already merged).
pub async fn merge(
    state: &AppState,
    caller: &Caller,
    from: &str,
    into: &str,
) -> Result<Merged, WebError> {
    caller.require(Action::WorkTickets)?;
    if into.trim().is_empty() {
        return Err(WebError::Unprocessable(
            "into: name the ticket to merge into, like CS-000123".into(),
        ));
    }
    let merged = state
        .store
        .merge_tickets(from, into, &caller.actor())
        .await?;
    state.forget_counts();
    tracing::info!(
        from = merged.from,
        into = merged.into,
        messages = merged.messages,
        agent = caller.agent.email,
        "tickets merged"
    );
    Ok(merged)
}

/// Undoes the merge of `from` for this caller.
///
/// # Errors
///
/// As [`merge`]; 422 when `from` is not merged.
pub async fn undo(state: &AppState, caller: &Caller, from: &str) -> Result<Merged, WebError> {
    caller.require(Action::WorkTickets)?;
    let undone = state.store.undo_merge(from, &caller.actor()).await?;
    state.forget_counts();
    tracing::info!(
        from = undone.from,
        into = undone.into,
        messages = undone.messages,
        agent = caller.agent.email,
        "merge undone"
    );
    Ok(undone)
}

/// `POST /api/tickets/{number}/merge` `{"into": "CS-..."}`: 200 with what moved.
async fn merge_api(
    State(state): State<AppState>,
    caller: Caller,
    Path(number): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, WebError> {
    let into = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(o)) => match o.get("into") {
            Some(Value::String(s)) => s.clone(),
            _ => {
                return Err(WebError::Unprocessable(
                    "into: missing or not a string; send {\"into\": \"CS-000123\"}".into(),
                ))
            }
        },
        Ok(_) => return Err(WebError::BadRequest("send one JSON object".into())),
        Err(e) => return Err(WebError::BadRequest(format!("the body is not JSON: {e}"))),
    };
    Ok(Json(json!(merge(&state, &caller, &number, &into).await?)))
}

/// `POST /api/tickets/{number}/merge/undo`: 200 with what moved back.
async fn undo_api(
    State(state): State<AppState>,
    caller: Caller,
    Path(number): Path<String>,
) -> Result<Json<Value>, WebError> {
    Ok(Json(json!(undo(&state, &caller, &number).await?)))
}

/// A ticket number fit for a redirect.
fn clean(number: &str) -> String {
    number
        .trim()
        .to_ascii_uppercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect()
}

#[derive(serde::Deserialize)]
struct MergeForm {
    #[serde(default)]
    into: String,
}

/// `POST /tickets/{number}/merge` (`into`): on to the surviving ticket.
async fn merge_form(
    State(state): State<AppState>,
    PageCaller(caller): PageCaller,
    Path(number): Path<String>,
    Form(form): Form<MergeForm>,
) -> Result<Response, PageError> {
    let merged = merge(&state, &caller, &number, &form.into).await?;
    Ok(Redirect::to(&format!("/tickets/{}?done=merged", clean(&merged.into))).into_response())
}

/// `POST /tickets/{number}/unmerge`: back to the restored ticket.
async fn undo_form(
    State(state): State<AppState>,
    PageCaller(caller): PageCaller,
    Path(number): Path<String>,
) -> Result<Response, PageError> {
    let undone = undo(&state, &caller, &number).await?;
    Ok(Redirect::to(&format!("/tickets/{}?done=unmerged", clean(&undone.from))).into_response())
}
