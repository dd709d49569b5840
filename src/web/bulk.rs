//! Bulk actions on a queue: the tickets ticked on the queue page get one
//! change (assignee, status or category), each through the same path and
//! audit trail as a change of one ticket ([`super::tickets::change`]),
//! with the same roles. A plain form: it works without JavaScript.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::post;
use axum::{Form, Router};
use minijinja::context;

use super::auth::{safe_next, PageCaller};
use super::pages::{frame, language, render, PageError};
use super::tickets::Patch;
use super::{AppState, WebError};
use crate::agents::Action;

/// The most tickets one bulk action changes (a queue page shows 50).
const MAX_TICKETS: usize = 200;

pub fn routes() -> Router<AppState> {
    Router::new().route("/bulk", post(apply))
}

/// What the form asks, read from its fields (`ticket` repeats).
#[derive(Debug, Default)]
struct BulkForm {
    tickets: Vec<String>,
    action: String,
    status: String,
    category: String,
    assignee: String,
    back: String,
}

impl BulkForm {
    fn read(pairs: Vec<(String, String)>) -> BulkForm {
        let mut f = BulkForm::default();
        for (k, v) in pairs {
            match k.as_str() {
                "ticket" => f.tickets.push(v.trim().to_ascii_uppercase()),
                // One choice names the field and its new value:
                // `status:resolved`, `category:question`, `assign:` (nobody).
                "change" => {
                    let (action, value) = v.split_once(':').unwrap_or((v.as_str(), ""));
                    f.action = action.to_string();
                    match action {
                        "status" => f.status = value.to_string(),
                        "category" => f.category = value.to_string(),
                        "assign" => f.assignee = value.trim().to_lowercase(),
                        _ => {}
                    }
                }
                "back" => f.back = v,
                _ => {}
            }
        }
        f.tickets.sort();
        f.tickets.dedup();
        f
    }

    /// The one change to make, as for a single ticket.
    fn patch(&self) -> Result<Patch, WebError> {
        let bad = |e: crate::domain::UnknownValue| WebError::Unprocessable(e.to_string());
        Ok(match self.action.as_str() {
            "status" => Patch {
                status: Some(self.status.trim().parse().map_err(bad)?),
                ..Patch::default()
            },
            "category" => Patch {
                category: Some(self.category.trim().parse().map_err(bad)?),
                ..Patch::default()
            },
            "assign" => Patch {
                assignee: Some(Some(self.assignee.clone()).filter(|a| !a.is_empty())),
                ..Patch::default()
            },
            other => {
                return Err(WebError::Unprocessable(format!(
                    "change {other:?}: choose a status, a category or an assignee"
                )))
            }
        })
    }
}

/// `POST /bulk`: applies the change to each ticked ticket; back to the
/// queue with how many changed, or a page naming those that were not
/// changed and why.
async fn apply(
    State(state): State<AppState>,
    PageCaller(caller): PageCaller,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    caller.require(Action::WorkTickets)?;
    let form = BulkForm::read(pairs);
    if form.tickets.is_empty() {
        return Err(WebError::Unprocessable("tick at least one ticket".into()).into());
    }
    if form.tickets.len() > MAX_TICKETS {
        return Err(
            WebError::Unprocessable(format!("at most {MAX_TICKETS} tickets at once")).into(),
        );
    }
    let patch = form.patch()?;
    // Assigning to someone else is a lead's: refused as a whole, at once.
    if let Some(Some(a)) = &patch.assignee {
        if *a != caller.agent.email {
            caller.require(Action::AssignOthers)?;
        }
    }
    let mut changed = 0usize;
    let mut refused: Vec<(String, String)> = Vec::new();
    for number in &form.tickets {
        match super::tickets::change(&state, &caller, number, &patch).await {
            Ok(fields) => changed += usize::from(!fields.is_empty()),
            Err(WebError::Internal(e)) => return Err(WebError::Internal(e).into()),
            Err(e) => refused.push((number.clone(), e.message())),
        }
    }
    tracing::info!(
        agent = caller.agent.email,
        action = form.action,
        tickets = form.tickets.len(),
        changed,
        refused = refused.len(),
        "bulk change"
    );
    let back = safe_next(&form.back).unwrap_or_else(|| "/".into());
    if refused.is_empty() {
        let sep = if back.contains('?') { '&' } else { '?' };
        return Ok(Redirect::to(&format!("{back}{sep}bulk={changed}")).into_response());
    }
    let lang = language(&headers, Some(&caller.agent));
    let ctx = context! {
        changed => changed,
        refused => refused,
        back => back,
        ..frame(Some(&caller), lang, "/")
    };
    Ok(Html(render(&state, "bulk.html", ctx)?).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_names_one_change() {
        let f = BulkForm::read(vec![
            ("ticket".into(), "cs-000002".into()),
            ("ticket".into(), "CS-000001".into()),
            ("ticket".into(), "CS-000002".into()),
            ("change".into(), "status:waiting".into()),
        ]);
        assert_eq!(f.tickets, vec!["CS-000001", "CS-000002"]);
        let p = f.patch().unwrap();
        assert_eq!(p.status, Some(crate::domain::TicketStatus::Waiting));
        assert!(p.category.is_none() && p.assignee.is_none());
        let nobody = BulkForm::read(vec![("change".into(), "assign:".into())]);
        assert_eq!(nobody.patch().unwrap().assignee, Some(None));
        let someone = BulkForm::read(vec![("change".into(), "assign:An@Desk.example".into())]);
        assert_eq!(
            someone.patch().unwrap().assignee,
            Some(Some("an@desk.example".into()))
        );
        let wrong = BulkForm {
            action: "status".into(),
            status: "gone".into(),
            ..BulkForm::default()
        };
        assert!(wrong.patch().is_err());
    }
}
