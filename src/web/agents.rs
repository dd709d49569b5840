//! The agents page (admins): who works in the workspace, their roles, and
//! disabling one (their sessions and tokens end at once). Adding agents and
//! setting passwords stays on the command line (`servicedesk agents add`),
//! where the password never passes through a browser form.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use minijinja::context;

use super::auth::PageCaller;
use super::pages::PageError;
use super::{AppState, WebError};
use crate::agents::Action;

/// `GET /agents`.
pub async fn page(
    State(state): State<AppState>,
    PageCaller(caller): PageCaller,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    caller.require(Action::ManageAgents)?;
    let lang = super::pages::language(&headers, Some(&caller.agent));
    let agents = state.store.agents().await?;
    let ctx = context! {
        agents => agents,
        ..super::pages::frame(Some(&caller), lang, "/agents")
    };
    Ok(Html(super::pages::render(&state, "agents.html", ctx)?).into_response())
}

/// `POST /agents/disable` (form `email`).
pub async fn disable(
    State(state): State<AppState>,
    PageCaller(caller): PageCaller,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    caller.require(Action::ManageAgents)?;
    let email = form.get("email").map(|e| e.trim()).unwrap_or("");
    if email.eq_ignore_ascii_case(&caller.agent.email) {
        return Err(WebError::Unprocessable("you cannot disable yourself here".into()).into());
    }
    state.store.disable_agent(email).await?;
    tracing::info!(agent = email, by = caller.agent.email, "agent disabled");
    Ok(Redirect::to("/agents").into_response())
}
