//! The workspace's pages: login, the queues, a ticket; and the forms they
//! post (reply, note, re-sort, status, assignment, charge decision,
//! language). Server-rendered with minijinja, auto-escaping on, templates
//! built into the binary; every form works without JavaScript.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use minijinja::{context, Environment, UndefinedBehavior};
use serde::Serialize;

use super::auth::{cookie, safe_next, MaybeCaller, PageCaller, LANGUAGE_COOKIE};
use super::i18n;
use super::tickets::Patch;
use super::time::brussels;
use super::{AppState, WebError};
use crate::agents::Action;
use crate::domain::{Category, ChargeReason, Language, TicketStatus};
use crate::store::{Agent, TicketQuery};

/// Tickets per queue page.
const PAGE_SIZE: i64 = 50;

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("login.html", include_str!("templates/login.html")),
    ("queues.html", include_str!("templates/queues.html")),
    ("ticket.html", include_str!("templates/ticket.html")),
    ("error.html", include_str!("templates/error.html")),
    ("saved.html", include_str!("templates/saved.html")),
    ("agents.html", include_str!("templates/agents.html")),
    ("registry.html", include_str!("templates/registry.html")),
    ("bulk.html", include_str!("templates/bulk.html")),
    ("shortcuts.html", include_str!("templates/shortcuts.html")),
    ("live.html", include_str!("templates/live.html")),
    ("collision.html", include_str!("templates/collision.html")),
];

/// The page templates; `.html` names turn HTML auto-escaping on, and an
/// undefined name is an error (a missing translation key fails to render).
///
/// # Errors
///
/// When a template does not parse.
pub fn templates() -> Result<Environment<'static>, minijinja::Error> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    for (name, text) in TEMPLATES {
        env.add_template(name, text)?;
    }
    env.add_filter("brussels", |s: String| brussels(&s));
    Ok(env)
}

/// The language an agent reads: the cookie, their profile, the browser, Dutch.
pub fn language(headers: &HeaderMap, agent: Option<&Agent>) -> Language {
    cookie(headers, LANGUAGE_COOKIE)
        .and_then(Language::parse)
        .or(agent.and_then(|a| a.language))
        .or_else(|| {
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .and_then(i18n::from_accept_language)
        })
        .unwrap_or_default()
}

/// Escapes text for HTML outside templates.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A page's failure: the same statuses as the API, as a small HTML page.
pub struct PageError(WebError);

impl<E: Into<WebError>> From<E> for PageError {
    fn from(e: E) -> Self {
        PageError(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        if let WebError::Internal(e) = &self.0 {
            tracing::error!("workspace: {e:#}");
        }
        let body = format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>{}</title>\
             <link rel=\"stylesheet\" href=\"/assets/app.css\"></head><body><main class=\"narrow\">\
             <h1>{}</h1><p>{}</p><p><a href=\"/\">servicedesk</a></p></main></body></html>",
            status.as_u16(),
            status.as_u16(),
            escape(&self.0.message())
        );
        (status, Html(body)).into_response()
    }
}

pub(super) fn render(
    state: &AppState,
    name: &str,
    ctx: minijinja::Value,
) -> Result<String, WebError> {
    state
        .templates
        .get_template(name)
        .and_then(|t| t.render(ctx))
        .map_err(|e| WebError::Internal(anyhow::anyhow!("template {name}: {e:#}")))
}

#[derive(Serialize)]
struct AgentView<'a> {
    name: &'a str,
    email: &'a str,
    role: &'a str,
}

/// What every page's frame needs.
pub(super) fn frame(
    caller: Option<&super::auth::Caller>,
    lang: Language,
    here: &str,
) -> minijinja::Value {
    let agent = caller.map(|c| AgentView {
        name: &c.agent.name,
        email: &c.agent.email,
        role: c.agent.role.as_str(),
    });
    context! {
        t => i18n::catalogue(lang),
        lang => lang.as_str(),
        languages => Language::ALL.iter().map(|l| l.as_str()).collect::<Vec<_>>(),
        agent => agent,
        is_admin => caller.is_some_and(|c| crate::agents::may(c.agent.role, Action::ManageAgents)),
        csrf => caller.map(|c| c.csrf_token()).unwrap_or(""),
        here => here,
    }
}

/// The login form, with a message key (`login_failed`, `login_throttled`).
pub fn login_form(
    state: &AppState,
    headers: &HeaderMap,
    next: Option<&str>,
    message: Option<&str>,
    status: StatusCode,
) -> Response {
    let lang = language(headers, None);
    let ctx = context! {
        next => next.unwrap_or(""),
        message => message,
        ..frame(None, lang, "/login")
    };
    match render(state, "login.html", ctx) {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => PageError(e).into_response(),
    }
}

/// The queue page's query: a view, filters, and the cursor.
#[derive(Debug, Default, serde::Deserialize)]
pub struct QueueParams {
    #[serde(default)]
    view: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    customer: String,
    #[serde(default)]
    language: String,
    #[serde(default)]
    chargeable: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    before: String,
    /// How many tickets the bulk action just changed (shown once).
    #[serde(default)]
    bulk: String,
}

impl QueueParams {
    /// This page's query string with another cursor (or none).
    fn link(&self, before: Option<i64>) -> String {
        let mut parts = Vec::new();
        for (k, v) in [
            ("view", &self.view),
            ("category", &self.category),
            ("status", &self.status),
            ("customer", &self.customer),
            ("language", &self.language),
            ("chargeable", &self.chargeable),
            ("q", &self.q),
        ] {
            if !v.is_empty() {
                parts.push(format!("{k}={}", query_encode(v)));
            }
        }
        if let Some(b) = before {
            parts.push(format!("before={b}"));
        }
        format!("/?{}", parts.join("&"))
    }
}

fn query_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn opt<T: std::str::FromStr<Err = crate::domain::UnknownValue>>(
    key: &str,
    s: &str,
) -> Result<Option<T>, WebError> {
    if s.trim().is_empty() {
        return Ok(None);
    }
    s.parse()
        .map(Some)
        .map_err(|e| WebError::BadRequest(format!("{key}: {e}")))
}

#[derive(Serialize)]
struct Row {
    number: String,
    subject: String,
    customer: String,
    sender: String,
    category: &'static str,
    status: &'static str,
    reason: Option<&'static str>,
    language: &'static str,
    assignee: Option<String>,
    attention: bool,
    created_at: String,
    /// The running SLA clock's next due time.
    due: Option<String>,
    /// Where the search box's text was found (a search only).
    found: Option<crate::search::Found>,
}

/// `GET /`: the queues (per category) and views with their counts, filters,
/// and one page of tickets, newest first; "next page" continues below the
/// last id shown (keyset, never OFFSET).
/// The active agents (address, name) a lead may give tickets to; none for
/// a caller who may not assign others.
async fn assignable(
    state: &AppState,
    caller: &super::auth::Caller,
) -> Result<Vec<(String, String)>, WebError> {
    if !crate::agents::may(caller.agent.role, Action::AssignOthers) {
        return Ok(Vec::new());
    }
    Ok(state
        .store
        .agents()
        .await?
        .into_iter()
        .filter(|a| a.active)
        .map(|a| (a.email, a.name))
        .collect())
}

pub async fn queues(
    State(state): State<AppState>,
    PageCaller(caller): PageCaller,
    headers: HeaderMap,
    Query(p): Query<QueueParams>,
) -> Result<Response, PageError> {
    caller.require(Action::ReadTickets)?;
    let live_after = state.live.cursor_now();
    let lang = language(&headers, Some(&caller.agent));
    let view_name = if p.view.is_empty() {
        "open"
    } else {
        p.view.as_str()
    };
    let query = TicketQuery {
        view: super::api::view(view_name, &caller.agent.email)?,
        category: opt("category", &p.category)?,
        status: opt("status", &p.status)?,
        customer: Some(p.customer.clone()).filter(|c| !c.trim().is_empty()),
        language: opt("language", &p.language)?,
        chargeable: match p.chargeable.as_str() {
            "yes" => Some(true),
            "no" => Some(false),
            _ => None,
        },
        text: Some(p.q.clone()).filter(|q| !q.trim().is_empty()),
        before_id: super::api::cursor(&p.before),
        limit: PAGE_SIZE + 1,
    };
    let mut tickets = state.store.ticket_page(&query).await?;
    let more = tickets.len() as i64 > PAGE_SIZE;
    tickets.truncate(PAGE_SIZE as usize);
    let next = more.then(|| p.link(tickets.last().map(|t| t.id)));
    let counts = state.queue_counts(&caller.agent.email).await?;
    let mut found = match &query.text {
        Some(text) => state.store.found_on_page(text, &tickets).await?,
        None => HashMap::new(),
    };
    let rows: Vec<Row> = tickets
        .iter()
        .map(|t| Row {
            number: t.number.clone(),
            subject: t.subject.clone(),
            customer: t.customer.clone(),
            sender: t.sender.clone(),
            category: t.category.as_str(),
            status: t.status.as_str(),
            reason: t.chargeable_reason.map(|r| r.as_str()),
            language: t.language.as_str(),
            assignee: t.assignee.clone(),
            attention: t.attention.is_some(),
            created_at: t.created_at.clone(),
            due: t.sla.sla_next_due.clone(),
            found: found.remove(&t.id),
        })
        .collect();
    let views = [
        ("open", counts.open),
        ("mine", counts.mine),
        ("unassigned", counts.unassigned),
        ("awaiting_approval", counts.awaiting_approval),
        ("on_hold", counts.on_hold),
        ("waiting", counts.waiting),
        ("to_check", counts.to_check),
        ("due_soon", counts.due_soon),
        ("overdue", counts.overdue),
        ("everything", -1),
    ];
    let here = p.link(query.before_id);
    // Leads may give the ticked tickets to anyone active.
    let assignees = assignable(&state, &caller).await?;
    let ctx = context! {
        bulk_done => p.bulk.parse::<u32>().ok(),
        assignees => assignees,
        rows => rows,
        views => views.iter().map(|(v, n)| context! { name => v, count => n }).collect::<Vec<_>>(),
        categories => counts.categories.iter().map(|(c, n)| context! { name => c.as_str(), count => n }).collect::<Vec<_>>(),
        view => view_name,
        f => context! {
            category => p.category, status => p.status, customer => p.customer,
            language => p.language, chargeable => p.chargeable, q => p.q,
        },
        all_categories => Category::ALL.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        all_statuses => TicketStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        next => next.filter(|_| !matches!(query.view, crate::store::View::DueSoon | crate::store::View::Overdue)),
        paged => query.before_id.is_some(),
        sla_now => crate::store::now(),
        first => p.link(None),
        live => super::live::page(&state, &caller, live_after, None).await?,
        ..frame(Some(&caller), lang, &here)
    };
    Ok(Html(render(&state, "queues.html", ctx)?).into_response())
}

#[derive(Serialize)]
struct MessageView {
    attachments: Vec<crate::store::AttachmentInfo>,
    id: i64,
    has_html: bool,
    kind: &'static str,
    from: String,
    author: Option<String>,
    outsider: bool,
    created_at: String,
    subject: String,
    text: String,
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct TicketParams {
    #[serde(default)]
    done: String,
    /// A saved reply to start the answer from.
    #[serde(default)]
    saved: String,
    /// `remote`: the HTML frames load `https:` images too.
    #[serde(default)]
    images: String,
}

/// `GET /tickets/{number}`: the thread, the sorting evidence, the customer
/// panel, the charge timeline, the history, and the forms.
pub async fn ticket(
    State(state): State<AppState>,
    PageCaller(caller): PageCaller,
    headers: HeaderMap,
    Path(number): Path<String>,
    Query(params): Query<TicketParams>,
) -> Result<Response, PageError> {
    caller.require(Action::ReadTickets)?;
    let live_after = state.live.cursor_now();
    let lang = language(&headers, Some(&caller.agent));
    let (t, thread) = state.store.ticket(&number).await?;
    let events = state.store.ticket_events(&t.number).await?;
    let attachments = state.store.ticket_attachments(&t.number).await?;
    let registry = state.store.registry().await?;
    let person = registry.lookup(&t.sender);
    let customer = registry.customer(&t.customer);
    let others = state
        .store
        .other_open_tickets(&t.customer, &t.number)
        .await?;
    let agents = assignable(&state, &caller).await?;
    let messages: Vec<MessageView> = thread
        .iter()
        .map(|m| MessageView {
            attachments: attachments
                .iter()
                .filter(|a| a.message == m.id)
                .cloned()
                .collect(),
            id: m.id,
            has_html: m.has_html,
            kind: m.kind(),
            from: m.from.clone(),
            author: m.author.clone(),
            outsider: m.outsider,
            created_at: m.created_at.clone(),
            subject: m.subject.clone(),
            text: m.body.clone(),
        })
        .collect();
    let notices_sent = thread.iter().filter(|m| m.kind() == "auto_reply").count();
    let saved_replies: Vec<(i64, String, &'static str)> = state
        .store
        .saved_replies()
        .await?
        .into_iter()
        .map(|s| (s.id, s.name, s.language.as_str()))
        .collect();
    let extras = super::drafts::ticket_extras(&state, &caller, &t.number).await?;
    // The agent's saved draft, and after it a saved reply asked for.
    let draft = match params.saved.parse::<i64>() {
        Ok(id) => {
            let saved = super::saved::for_ticket(&state, &caller, &t.number, id)
                .await?
                .unwrap_or_default();
            if extras.reply_draft.trim().is_empty() {
                saved
            } else {
                format!("{}\n\n{saved}", extras.reply_draft.trim_end())
            }
        }
        Err(_) => extras.reply_draft.clone(),
    };
    let ev = &t.evidence;
    let pairs = |key: &str| -> Vec<(String, String)> {
        ev.get(key)
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|r| {
                        Some((
                            r.get(0)?.as_str()?.to_string(),
                            format!("{:+.2}", r.get(1)?.as_f64()?),
                        ))
                    })
                    .take(12)
                    .collect()
            })
            .unwrap_or_default()
    };
    let percent = |key: &str| {
        ev.get(key)
            .and_then(|c| c.as_f64())
            .map(|c| format!("{:.0}%", c * 100.0))
    };
    let ctx = context! {
        tk => minijinja::Value::from_serialize(&t),
        number => t.number,
        category => t.category.as_str(),
        status => t.status.as_str(),
        reason => t.chargeable_reason.map(|r| r.as_str()),
        language_of_ticket => t.language.as_str(),
        messages => messages,
        confidence => percent("confidence"),
        reason_confidence => percent("reason_confidence"),
        reason_sentence => t.chargeable_reason.and(ev.get("reason_sentence").and_then(|s| s.as_str())),
        rules => pairs("rules"),
        features => pairs("features"),
        priority => t.priority.as_str(),
        priority_features => pairs("priority_features"),
        all_priorities => crate::domain::Priority::ALL.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
        customer_status => customer.map(|c| c.status.as_str()),
        gaps => registry
            .coverage_gaps()
            .into_iter()
            .filter(|g| g.starts_with(&format!("{}: ", t.customer)))
            .collect::<Vec<_>>(),
        campuses => customer.map(|c| c.campuses.join(", ")).unwrap_or_default(),
        person_role => person.map(|(p, _)| p.role.as_str()),
        person_campus => person.and_then(|(p, _)| p.campus.clone()),
        others => others.iter().map(|(n, s, st)| context! { number => n, subject => s, status => st.as_str() }).collect::<Vec<_>>(),
        notices_sent => notices_sent,
        events => events,
        agents => agents,
        mine => t.assignee.as_deref() == Some(caller.agent.email.as_str()),
        can_assign => crate::agents::may(caller.agent.role, Action::AssignOthers),
        all_categories => Category::ALL.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        all_reasons => ChargeReason::ALL.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        all_statuses => TicketStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        done => params.done,
        remote_images => params.images == "remote",
        saved_replies => saved_replies,
        draft => draft,
        x => minijinja::Value::from_serialize(&extras),
        sla_now => crate::store::now(),
        live => super::live::page(&state, &caller, live_after, Some((&t.number, &thread))).await?,
        ..frame(Some(&caller), lang, &format!("/tickets/{}", t.number))
    };
    Ok(Html(render(&state, "ticket.html", ctx)?).into_response())
}

/// The saved replies page.
///
/// # Errors
///
/// On database or template failure.
pub async fn render_saved_replies(
    state: &AppState,
    caller: &super::auth::Caller,
    headers: &HeaderMap,
) -> Result<String, WebError> {
    let lang = language(headers, Some(&caller.agent));
    let replies = state.store.saved_replies().await?;
    let ctx = context! {
        replies => replies,
        can_edit => crate::agents::may(caller.agent.role, Action::EditSavedReplies),
        ..frame(Some(caller), lang, "/saved-replies")
    };
    render(state, "saved.html", ctx)
}

fn back_to(number: &str, done: &str) -> Response {
    let number: String = number
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    Redirect::to(&format!("/tickets/{number}?done={done}")).into_response()
}

/// `POST /tickets/{number}/reply`.
pub async fn reply(
    State(state): State<AppState>,
    PageCaller(caller): PageCaller,
    headers: HeaderMap,
    Path(number): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    // Something arrived since the agent started writing: ask first.
    if let Some(ask) =
        super::live::ask_before_reply(&state, &caller, &headers, &number, &form).await?
    {
        return Ok(ask);
    }
    let text = form.get("text").map(String::as_str).unwrap_or("");
    super::tickets::reply_after(&state, &caller, &number, text, state.undo_send).await?;
    Ok(back_to(&number, "reply"))
}

/// `POST /tickets/{number}/note`.
pub async fn note(
    State(state): State<AppState>,
    PageCaller(caller): PageCaller,
    Path(number): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let text = form.get("text").map(String::as_str).unwrap_or("");
    super::tickets::note(&state, &caller, &number, text).await?;
    Ok(back_to(&number, "saved"))
}

/// `POST /tickets/{number}/update`: any of `category`,
/// `chargeable_reason` (`none` = not chargeable), `status`, `assignee`
/// (empty = nobody), `charge_approved` (`yes`, `no`, empty = undecided).
pub async fn update(
    State(state): State<AppState>,
    PageCaller(caller): PageCaller,
    Path(number): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let field = |k: &str| form.get(k).map(|v| v.trim());
    let mut patch = Patch {
        category: field("category")
            .map(str::parse)
            .transpose()
            .map_err(vocab_error)?,
        status: field("status")
            .map(str::parse)
            .transpose()
            .map_err(vocab_error)?,
        priority: field("priority")
            .map(str::parse)
            .transpose()
            .map_err(vocab_error)?,
        ..Patch::default()
    };
    if let Some(r) = field("chargeable_reason") {
        patch.chargeable_reason = Some(if r == "none" || r.is_empty() {
            None
        } else {
            Some(r.parse().map_err(vocab_error)?)
        });
    }
    if let Some(a) = field("assignee") {
        patch.assignee = Some(Some(a.to_string()).filter(|a| !a.is_empty()));
    }
    if let Some(c) = field("charge_approved") {
        patch.charge_approved = Some(match c {
            "yes" => Some(true),
            "no" => Some(false),
            _ => None,
        });
    }
    if patch.is_empty() {
        return Err(WebError::Unprocessable("nothing to change".into()).into());
    }
    super::tickets::change(&state, &caller, &number, &patch).await?;
    Ok(back_to(&number, "saved"))
}

fn vocab_error(e: crate::domain::UnknownValue) -> WebError {
    WebError::Unprocessable(e.to_string())
}

#[derive(serde::Deserialize)]
pub struct LanguageForm {
    #[serde(default)]
    lang: String,
    #[serde(default)]
    back: String,
}

/// `POST /language`: the agent's choice, in a cookie and their profile.
pub async fn set_language(
    State(state): State<AppState>,
    MaybeCaller(caller): MaybeCaller,
    Form(form): Form<LanguageForm>,
) -> Result<Response, PageError> {
    let lang = Language::parse(&form.lang)
        .ok_or_else(|| WebError::Unprocessable("lang: use nl, fr, en or de".into()))?;
    if let Some(c) = &caller {
        state.store.set_agent_language(c.agent.id, lang).await?;
    }
    let back = safe_next(&form.back).unwrap_or_else(|| "/".into());
    let mut res = Redirect::to(&back).into_response();
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{LANGUAGE_COOKIE}={}; SameSite=Strict; Path=/; Max-Age=31536000{secure}",
        lang.as_str()
    )) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every template renders in every language with every branch taken:
    /// a key missing from the catalogue, or a misspelt one, fails here.
    #[test]
    fn every_page_renders_in_all_four_languages() {
        let env = templates().unwrap();
        let lang_frame = |l: Language| {
            let caller = None;
            frame(caller, l, "/")
        };
        for l in Language::ALL {
            let login = env
                .get_template("login.html")
                .unwrap()
                .render(context! { next => "/", message => "login_throttled", ..lang_frame(l) })
                .unwrap();
            assert!(login.contains("name=\"email\"") && login.contains("name=\"password\""));
            let agent = context! { name => "An", email => "an@desk.example", role => "lead" };
            let row = context! {
                number => "CS-000001", subject => "<b>Storing</b>", customer => "WZC", sender => "a@b.example",
                category => "incident", status => "awaiting_approval", reason => "training",
                language => "nl", assignee => None::<String>, attention => true,
                created_at => "2026-12-06T10:00:00.000Z", due => "2026-12-07T09:30:00.000Z",
                found => context! { field => "note", snippet => vec![("<i>de</i> ", false), ("printer", true)] },
            };
            let queues = env
                .get_template("queues.html")
                .unwrap()
                .render(context! {
                    rows => vec![row],
                    views => vec![context! { name => "open", count => 1 }, context! { name => "everything", count => -1 }],
                    categories => vec![context! { name => "incident", count => 1 }],
                    view => "open",
                    f => context! { category => "", status => "", customer => "", language => "", chargeable => "yes", q => "" },
                    all_categories => vec!["question", "incident", "change", "feedback"],
                    all_statuses => vec!["new", "open"],
                    next => "/?before=1", paged => true, first => "/",
                    bulk_done => Some(2), assignees => vec![("b@desk.example", "B <b>")],
                    agent => agent.clone(), csrf => "tok", sla_now => "2026-12-07T10:00:00.000Z",
                    ..lang_frame(l)
                })
                .unwrap();
            assert!(
                queues.contains("&lt;b&gt;Storing&lt;&#x2f;b&gt;"),
                "escaped: {queues}"
            );
            assert!(
                queues.contains("form=\"bulk\"")
                    && queues.contains("value=\"assign:b@desk.example\""),
                "bulk: {queues}"
            );
            assert!(queues.contains("id=\"shortcuts\"") && queues.contains("B &lt;b&gt;"));
            assert!(
                queues.contains("&lt;i&gt;de&lt;&#x2f;i&gt; <mark>printer</mark>"),
                "a search's snippet, escaped: {queues}"
            );
            let message = |kind: &str| {
                context! {
                    attachments => vec![context! { id => 1, name => "a.pdf", content_type => "application/pdf", size => 3 }],
                    id => 1, has_html => true, kind => kind, from => "a@b.example", author => "an@desk.example",
                    outsider => kind == "inbound", created_at => "2026-07-01T10:00:00Z", subject => "S", text => "<script>x</script>",
                }
            };
            let tk = context! {
                subject => "Storing", customer => "WZC", attention => "check", assignee => "an@desk.example",
                sender => "a@b.example", sender_name => "A", campus => "Gent", charge_approved => false,
                created_at => "2026-07-01T10:00:00Z", charge_decision => "niet akkoord",
                charge_decided_by => "a@b.example", charge_decided_message => "m@x",
                sla_tier => "gold", sla_response_minutes => 90, sla_resolution_minutes => 480,
                first_response_due => "2026-07-01T11:30:00.000Z", first_response_at => None::<String>,
                resolution_due => "2026-07-02T08:00:00.000Z", sla_paused_since => None::<String>,
            };
            let merged = |into: Option<minijinja::Value>| {
                context! {
                    reply_draft => "Dag", note_draft => "<i>notitie</i>", undo_secs => 10,
                    held => vec![context! { message_id => "sd.1.agent@x", due_at => "2026-07-01T10:00:10.000Z" }],
                    merge => context! {
                        merged_into => into,
                        merged_from => vec![context! { from => "CS-000003", into => "CS-000001", merged_by => "cli", merged_at => "2026-07-01T10:00:00Z" }],
                    },
                }
            };
            let ticket_ctx = context! {
                    tk => tk, number => "CS-000001", category => "change", status => "closed",
                    reason => "change_request", language_of_ticket => "fr",
                    messages => ["inbound", "reply", "auto_reply", "note"].map(message).to_vec(),
                    confidence => "45%", reason_confidence => "80%",
                    reason_sentence => "Kan er een <b>nieuw veld</b> bij?",
                    rules => vec![("incident.failure.nl", "+7.5")], features => vec![("w:fout", "+0.3")],
                    customer_status => "suspended", gaps => vec!["WZC: no technical contact"],
                    campuses => "Gent", person_role => "technical", person_campus => None::<String>,
                    others => vec![context! { number => "CS-000002", subject => "x", status => "open" }],
                    notices_sent => 1, events => vec![context! { actor => "mail", field => "status", old_value => None::<String>, new_value => "new", created_at => "2026-07-01T10:00:00Z" }],
                    agents => vec![("an@desk.example", "An")], mine => true, can_assign => true,
                    all_categories => vec!["change"], all_reasons => vec!["change_request"], all_statuses => vec!["closed"],
                    priority => "high", priority_features => vec![("w:dringend", "+0.4")],
                    all_priorities => vec!["normal", "high", "critical"],
                    done => "reply", remote_images => false,
                    saved_replies => vec![(1, "Hersteld", "fr")],
                    draft => "Dag {{ name }}",
                     agent => agent, csrf => "tok", sla_now => "2026-07-01T12:00:00.000Z",
                    ..lang_frame(l)
            };
            let ticket = env
                .get_template("ticket.html")
                .unwrap()
                .render(context! { x => merged(None), ..ticket_ctx.clone() })
                .unwrap();
            assert!(!ticket.contains("<script>x"), "mail text is escaped");
            assert!(
                ticket.contains("&lt;i&gt;notitie&lt;&#x2f;i&gt;</textarea>")
                    && ticket.contains("/tickets/CS-000001/undo-send")
                    && ticket.contains("CS-000003"),
                "drafts, held replies and merges are shown: {ticket}"
            );
            let gone = env
                .get_template("ticket.html")
                .unwrap()
                .render(context! {
                    x => merged(Some(context! { from => "CS-000001", into => "CS-000002", merged_by => "agent:an", merged_at => "2026-07-01T10:00:00Z" })),
                    ..ticket_ctx
                })
                .unwrap();
            // A merged ticket takes no answer: the composer is gone.
            assert!(
                gone.contains("/tickets/CS-000001/unmerge")
                    && !gone.contains("data-draft=\"reply\"")
            );
            assert!(
                ticket.contains("data-due=\"2026-07-01T11:30:00.000Z\"")
                    && ticket.contains("class=\"overdue\">01-07-2026 13:30</time>")
                    && ticket.contains("≤ 1h30m ("),
                "the SLA card: {ticket}"
            );
            assert!(
                queues.contains("class=\"overdue\">07-12-2026 10:30</time>"),
                "{queues}"
            );
            assert!(
                ticket.contains("Kan er een &lt;b&gt;nieuw veld&lt;&#x2f;b&gt; bij?"),
                "the reason's sentence is shown, escaped"
            );
            assert!(ticket.contains("<iframe sandbox=\"\""));
            assert!(
                ticket.contains("Dag {{ name }}</textarea>"),
                "the draft is text"
            );
            let saved = env
                .get_template("saved.html")
                .unwrap()
                .render(context! {
                    replies => vec![context! { id => 1, name => "Hersteld", language => "nl", text => "Dag", updated_by => "an", updated_at => "2026-07-01T10:00:00Z" }],
                    can_edit => true, agent => context! { name => "An", email => "an@desk.example", role => "lead" }, csrf => "tok",
                    ..lang_frame(l)
                })
                .unwrap();
            assert!(saved.contains("Hersteld"));
            let caller = crate::web::auth::Caller {
                agent: crate::store::Agent {
                    id: 1,
                    email: "admin@desk.example".into(),
                    name: "Ad".into(),
                    role: crate::domain::AgentRole::Admin,
                    active: true,
                    language: None,
                },
                session: None,
            };
            let agents = env
                .get_template("agents.html")
                .unwrap()
                .render(context! {
                    agents => vec![context! { email => "b@desk.example", name => "B", role => "agent", active => true },
                                   context! { email => "c@desk.example", name => "C", role => "lead", active => false }],
                    ..frame(Some(&caller), l, "/agents")
                })
                .unwrap();
            assert!(agents.contains("/agents/disable") && agents.contains("href=\"/agents\""));
            let registry = env
                .get_template("registry.html")
                .unwrap()
                .render(context! {
                    customers => vec![context! { name => "WZC <A>", status => "suspended", campuses => "Gent", sla => "gold" }], default_tier => "standard",
                    persons => vec![context! { email => "an@a.example", name => "An", customer => "WZC <A>", campus => None::<String>, role => "general", language => "nl", active => false }],
                    all_contract_statuses => vec!["active", "suspended"],
                    ..frame(Some(&caller), l, "/registry")
                })
                .unwrap();
            assert!(registry.contains("/registry/contract") && registry.contains("WZC &lt;A&gt;"));
            assert!(
                registry.contains("<td>gold</td>"),
                "the customer's SLA tier"
            );
            assert!(ticket.contains(i18n::text(l, "registry_gaps")));
        }
    }
}
