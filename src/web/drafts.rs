//! Drafts saved as an agent types (`/api/tickets/{number}/drafts/...`,
//! used by `assets/drafts.js`), and taking back a reply inside its
//! undo-send window (a form on the ticket page, and the API).
//!
//! A draft belongs to one agent, ticket and kind (reply or note); the
//! ticket page renders it into the composer, so it survives a reload, a
//! change of status or owner, a merge (it moves along) and a restart.
//! Sending clears it (in [`super::tickets`]).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post, put};
use axum::{Form, Json, Router};
use serde_json::{json, Value};

use super::auth::{Caller, PageCaller};
use super::pages::PageError;
use super::{AppState, WebError};
use crate::agents::Action;
use crate::store::{DraftKind, MergeState, UndoSendError};

/// The longest draft kept (as the longest reply taken).
pub const MAX_DRAFT_CHARS: usize = 100_000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/tickets/{number}/drafts", get(list))
        .route(
            "/api/tickets/{number}/drafts/{kind}",
            put(save).delete(forget),
        )
        .route(
            "/api/tickets/{number}/replies/{message_id}/undo",
            post(undo_api),
        )
        .route("/tickets/{number}/undo-send", post(undo_form))
}

fn kind(s: &str) -> Result<DraftKind, WebError> {
    DraftKind::parse(s)
        .ok_or_else(|| WebError::NotFound(format!("draft kind {s:?}: use reply or note")))
}

/// `GET /api/tickets/{number}/drafts`: the caller's drafts on the ticket.
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(number): Path<String>,
) -> Result<Json<Value>, WebError> {
    caller.require(Action::WorkTickets)?;
    state.store.ticket(&number).await?;
    Ok(Json(json!(
        state.store.drafts(&caller.agent.email, &number).await?
    )))
}

/// `PUT /api/tickets/{number}/drafts/{kind}` `{"text": "..."}`: saved
/// (an empty text forgets the draft).
async fn save(
    State(state): State<AppState>,
    caller: Caller,
    Path((number, kind_name)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, WebError> {
    caller.require(Action::WorkTickets)?;
    let kind = kind(&kind_name)?;
    let text = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(o)) => match o.get("text") {
            Some(Value::String(s)) => s.clone(),
            _ => {
                return Err(WebError::Unprocessable(
                    "text: missing or not a string; send {\"text\": \"...\"}".into(),
                ))
            }
        },
        Ok(_) => return Err(WebError::BadRequest("send one JSON object".into())),
        Err(e) => return Err(WebError::BadRequest(format!("the body is not JSON: {e}"))),
    };
    if text.chars().count() > MAX_DRAFT_CHARS {
        return Err(WebError::Unprocessable(format!(
            "text is longer than {MAX_DRAFT_CHARS} characters"
        )));
    }
    let saved = state
        .store
        .save_draft(&caller.agent.email, &number, kind, &text)
        .await?;
    Ok(Json(
        json!({ "saved": saved.is_some(), "updated_at": saved }),
    ))
}

/// `DELETE /api/tickets/{number}/drafts/{kind}`: 204.
async fn forget(
    State(state): State<AppState>,
    caller: Caller,
    Path((number, kind_name)): Path<(String, String)>,
) -> Result<StatusCode, WebError> {
    caller.require(Action::WorkTickets)?;
    let kind = kind(&kind_name)?;
    state
        .store
        .save_draft(&caller.agent.email, &number, kind, "")
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn undo(
    state: &AppState,
    caller: &Caller,
    number: &str,
    message_id: &str,
) -> Result<String, WebError> {
    caller.require(Action::WorkTickets)?;
    match state
        .store
        .undo_send(&caller.agent.email, number, message_id, &caller.actor())
        .await
    {
        Ok(draft) => {
            state.forget_counts();
            tracing::info!(
                ticket = number,
                agent = caller.agent.email,
                "agent reply taken back"
            );
            Ok(draft)
        }
        Err(UndoSendError::TooLate) => Err(WebError::Unprocessable(
            "too late: the reply is already on its way".into(),
        )),
        Err(UndoSendError::NotFound(m)) => {
            Err(WebError::NotFound(format!("no reply {m} of yours here")))
        }
        Err(UndoSendError::Store(e)) => Err(e.into()),
    }
}

/// `POST /api/tickets/{number}/replies/{message_id}/undo`: the reply is
/// taken back (200 with the draft it became), or 422 when it is too late.
async fn undo_api(
    State(state): State<AppState>,
    caller: Caller,
    Path((number, message_id)): Path<(String, String)>,
) -> Result<Json<Value>, WebError> {
    let draft = undo(&state, &caller, &number, &message_id).await?;
    Ok(Json(json!({ "undone": true, "draft": draft })))
}

/// `POST /tickets/{number}/undo-send` (`message_id`): back to the ticket,
/// the reply's text in the composer.
async fn undo_form(
    State(state): State<AppState>,
    PageCaller(caller): PageCaller,
    Path(number): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let message_id = form.get("message_id").map(String::as_str).unwrap_or("");
    undo(&state, &caller, &number, message_id).await?;
    let number: String = number
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    Ok(Redirect::to(&format!("/tickets/{number}?done=undone#reply")).into_response())
}

/// A held reply as the ticket page shows it.
#[derive(Debug, serde::Serialize)]
pub struct HeldView {
    pub message_id: String,
    /// RFC 3339: the page counts down to it.
    pub due_at: String,
}

/// What the ticket page needs from daily work: the caller's drafts, their
/// replies still inside the undo window, and the ticket's merges.
#[derive(Debug, Default, serde::Serialize)]
pub struct TicketExtras {
    pub reply_draft: String,
    pub note_draft: String,
    pub held: Vec<HeldView>,
    pub undo_secs: u64,
    pub merge: MergeState,
}

/// The ticket page's drafts, held replies and merges for this caller.
///
/// # Errors
///
/// On database failure.
pub async fn ticket_extras(
    state: &AppState,
    caller: &Caller,
    number: &str,
) -> Result<TicketExtras, WebError> {
    let mut extras = TicketExtras {
        undo_secs: state.undo_send.as_secs(),
        merge: state.store.merge_state(number).await?,
        ..TicketExtras::default()
    };
    for d in state.store.drafts(&caller.agent.email, number).await? {
        match d.kind {
            DraftKind::Reply => extras.reply_draft = d.text,
            DraftKind::Note => extras.note_draft = d.text,
        }
    }
    extras.held = state
        .store
        .held_replies(&caller.agent.email, number, &crate::store::now())
        .await?
        .into_iter()
        .map(|h| HeldView {
            message_id: h.message_id,
            due_at: h.due_at,
        })
        .collect();
    Ok(extras)
}
