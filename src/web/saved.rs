//! Saved replies: named texts per language that an answer starts from,
//! with the ticket's fields filled in. Agents use them; leads edit them.
//!
//! A saved reply is a minijinja template over plain values only (number,
//! subject, customer, name, agent): no functions, no I/O, nothing of the
//! server reachable. It is checked when saved, and rendered as plain text.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Form, Json};
use minijinja::{context, Environment, UndefinedBehavior};
use serde_json::{json, Value};

use super::auth::{Caller, Lead, PageCaller};
use super::pages::PageError;
use super::{AppState, WebError};
use crate::agents::Action;
use crate::domain::Language;

/// The longest saved reply taken.
const MAX_CHARS: usize = 20_000;

/// The fields a saved reply may use, with what they hold.
pub struct Fields<'a> {
    pub number: &'a str,
    pub subject: &'a str,
    pub customer: &'a str,
    pub name: &'a str,
    pub agent: &'a str,
}

/// Renders a saved reply for a ticket; `strict` refuses unknown fields
/// (when saving), otherwise they render empty.
///
/// # Errors
///
/// 422 naming the template's mistake.
pub fn render(text: &str, f: &Fields<'_>, strict: bool) -> Result<String, WebError> {
    let mut env = Environment::new();
    env.set_undefined_behavior(if strict {
        UndefinedBehavior::Strict
    } else {
        UndefinedBehavior::Lenient
    });
    env.set_keep_trailing_newline(true);
    // Plain text: the name has no .html, so nothing is escaped.
    env.add_template("saved.txt", text)
        .and_then(|_| env.get_template("saved.txt"))
        .and_then(|t| {
            t.render(context! {
                number => f.number, subject => f.subject, customer => f.customer,
                name => f.name, agent => f.agent,
            })
        })
        .map_err(|e| WebError::Unprocessable(format!("the saved reply does not render: {e}")))
}

/// Checks a saved reply before it is stored.
fn check(name: &str, text: &str) -> Result<(), WebError> {
    if name.trim().is_empty() || name.chars().count() > 100 {
        return Err(WebError::Unprocessable("name: 1 to 100 characters".into()));
    }
    if text.trim().is_empty() || text.chars().count() > MAX_CHARS {
        return Err(WebError::Unprocessable(format!(
            "text: 1 to {MAX_CHARS} characters"
        )));
    }
    let sample = Fields {
        number: "CS-000123",
        subject: "Subject",
        customer: "Customer",
        name: "Name",
        agent: "Agent",
    };
    render(text, &sample, true).map(|_| ())
}

/// `GET /api/saved-replies`.
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, WebError> {
    caller.require(Action::ReadTickets)?;
    Ok(Json(json!(state.store.saved_replies().await?)))
}

/// `PUT /api/saved-replies` `{"name", "language", "text"}` (leads).
pub async fn put(
    State(state): State<AppState>,
    Lead(caller): Lead,
    body: Bytes,
) -> Result<Json<Value>, WebError> {
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| WebError::BadRequest(format!("the body is not JSON: {e}")))?;
    let field = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let (name, text) = (field("name"), field("text"));
    let language: Language = field("language")
        .parse()
        .map_err(|e| WebError::Unprocessable(format!("language: {e}")))?;
    check(&name, &text)?;
    state
        .store
        .save_reply(name.trim(), language, &text, &caller.agent.email)
        .await?;
    Ok(Json(json!({ "saved": true })))
}

/// `DELETE /api/saved-replies/{id}` (leads).
pub async fn delete(
    State(state): State<AppState>,
    _: Lead,
    Path(id): Path<i64>,
) -> Result<Json<Value>, WebError> {
    state.store.delete_saved_reply(id).await?;
    Ok(Json(json!({ "deleted": true })))
}

/// A saved reply rendered for a ticket (`None` when there is no such reply).
///
/// # Errors
///
/// On database failure or when the ticket is unknown.
pub async fn for_ticket(
    state: &AppState,
    caller: &Caller,
    number: &str,
    id: i64,
) -> Result<Option<String>, WebError> {
    let Some(saved) = state
        .store
        .saved_replies()
        .await?
        .into_iter()
        .find(|s| s.id == id)
    else {
        return Ok(None);
    };
    let (t, _) = state.store.ticket(number).await?;
    render(
        &saved.text,
        &Fields {
            number: &t.number,
            subject: &t.subject,
            customer: &t.customer,
            name: &t.sender_name,
            agent: &caller.agent.name,
        },
        false,
    )
    .map(Some)
}

/// `GET /api/tickets/{number}/saved-replies/{id}`: the text for this ticket.
pub async fn rendered(
    State(state): State<AppState>,
    caller: Caller,
    Path((number, id)): Path<(String, i64)>,
) -> Result<Json<Value>, WebError> {
    caller.require(Action::ReadTickets)?;
    let text = for_ticket(&state, &caller, &number, id)
        .await?
        .ok_or_else(|| WebError::NotFound(format!("saved reply {id} not found")))?;
    Ok(Json(json!({ "text": text })))
}

/// `GET /saved-replies`: the list; leads also edit and delete.
pub async fn page(
    State(state): State<AppState>,
    PageCaller(caller): PageCaller,
    headers: axum::http::HeaderMap,
) -> Result<Response, PageError> {
    caller.require(Action::ReadTickets)?;
    let html: String = super::pages::render_saved_replies(&state, &caller, &headers).await?;
    Ok(Html(html).into_response())
}

/// `POST /saved-replies` (form `name`, `language`, `text`), leads.
pub async fn save_form(
    State(state): State<AppState>,
    PageCaller(caller): PageCaller,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    caller.require(Action::EditSavedReplies)?;
    let field = |k: &str| form.get(k).cloned().unwrap_or_default();
    let (name, text) = (field("name"), field("text"));
    let language: Language = field("language")
        .parse()
        .map_err(|e: crate::domain::UnknownValue| WebError::Unprocessable(e.to_string()))?;
    check(&name, &text)?;
    state
        .store
        .save_reply(name.trim(), language, &text, &caller.agent.email)
        .await?;
    Ok(Redirect::to("/saved-replies").into_response())
}

/// `POST /saved-replies/{id}/delete`, leads.
pub async fn delete_form(
    State(state): State<AppState>,
    PageCaller(caller): PageCaller,
    Path(id): Path<i64>,
) -> Result<Response, PageError> {
    caller.require(Action::EditSavedReplies)?;
    state.store.delete_saved_reply(id).await?;
    Ok(Redirect::to("/saved-replies").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_reply_fills_in_the_ticket_and_nothing_else() {
        let f = Fields {
            number: "CS-000007",
            subject: "Printer",
            customer: "WZC De Linde",
            name: "Koen <K>",
            agent: "An",
        };
        let text = render(
            "Dag {{ name }},\nUw ticket {{ number }} ({{ subject }}).\n{{ agent }}\n",
            &f,
            true,
        )
        .unwrap();
        assert_eq!(text, "Dag Koen <K>,\nUw ticket CS-000007 (Printer).\nAn\n");
        assert!(
            check("x", "{{ config }}").is_err(),
            "unknown fields are refused when saved"
        );
        assert!(check("x", "{% include 'x' %}").is_err());
        assert!(check("x", "{{ unclosed").is_err());
        assert!(check("", "text").is_err());
        assert_eq!(render("{{ nothing }}!", &f, false).unwrap(), "!");
    }
}
