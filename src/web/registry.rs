//! The registry page (admins): the customers with their contract status,
//! which an admin sets active or suspended here through the same path as
//! `servicedesk customers set` (tickets on hold resume, each writer gets a
//! `resumed` notice, each resumed ticket's history names the admin), and
//! the persons, read-only. Importing stays on the command line.

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
use crate::domain::ContractStatus;

/// `GET /registry`.
pub async fn page(
    State(state): State<AppState>,
    PageCaller(caller): PageCaller,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    caller.require(Action::ManageRegistry)?;
    let lang = super::pages::language(&headers, Some(&caller.agent));
    let registry = state.store.registry().await?;
    let persons = state.store.persons().await?;
    let ctx = context! {
        customers => registry.customers().iter().map(|c| context! {
            name => c.name, status => c.status.as_str(), campuses => c.campuses.join(", "),
            sla => c.sla,
        }).collect::<Vec<_>>(),
        default_tier => state.store.sla_policy().default_tier.clone(),
        persons => persons.iter().map(|(p, active)| context! {
            email => p.email, name => p.name, customer => p.customer, campus => p.campus,
            role => p.role.as_str(), language => p.language.as_str(), active => active,
        }).collect::<Vec<_>>(),
        all_contract_statuses => ContractStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        ..super::pages::frame(Some(&caller), lang, "/registry")
    };
    Ok(Html(super::pages::render(&state, "registry.html", ctx)?).into_response())
}

/// `POST /registry/contract` (form `customer`, `status`).
pub async fn set_contract(
    State(state): State<AppState>,
    PageCaller(caller): PageCaller,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    caller.require(Action::ManageRegistry)?;
    let name = form.get("customer").map(|c| c.trim()).unwrap_or("");
    let status: ContractStatus = form
        .get("status")
        .map(String::as_str)
        .unwrap_or("")
        .parse()
        .map_err(|e: crate::domain::UnknownValue| WebError::Unprocessable(e.to_string()))?;
    if state.store.registry().await?.customer(name).is_none() {
        return Err(WebError::NotFound(format!("customer {name:?} not found")).into());
    }
    let actor = format!("agent:{}", caller.agent.email);
    let resumed =
        crate::contract::set_by(&state.replier, &state.store, name, status, &actor).await?;
    state.forget_counts();
    tracing::info!(
        customer = name,
        contract = status.as_str(),
        resumed = resumed.len(),
        by = caller.agent.email,
        "contract set"
    );
    Ok(Redirect::to("/registry").into_response())
}
