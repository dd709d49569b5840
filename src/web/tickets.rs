//! The changes agents make to tickets, shared by the pages and the API:
//! a reply queued in the outbox, an internal note, a re-sort or status
//! change or assignment. Each checks the caller's role, runs in one
//! transaction, and leaves an audit event.

use super::auth::Caller;
use super::WebError;
use crate::agents::Action;
use crate::domain::{Category, ChargeReason, Notice, Priority, TicketStatus};
use crate::reply::AgentReply;
use crate::store::{DraftKind, NewOutboxEntry, ThreadMessage, TicketChange};

/// The longest reply or note taken.
const MAX_TEXT_CHARS: usize = 100_000;

fn checked_text(text: &str) -> Result<&str, WebError> {
    let text = text.trim_end();
    if text.trim().is_empty() {
        return Err(WebError::Unprocessable(
            "text is empty: write something".into(),
        ));
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(WebError::Unprocessable(format!(
            "text is longer than {MAX_TEXT_CHARS} characters"
        )));
    }
    Ok(text)
}

fn unique() -> Result<String, WebError> {
    crate::agents::new_secret()
        .map(|s| s[..24].to_string())
        .map_err(|e| WebError::Internal(e.into()))
}

/// Queues an agent's reply to the ticket's sender and adds it to the
/// thread, in one transaction; the outbox sender sends it like every
/// reply. A new ticket becomes open. Returns the reply's Message-ID.
///
/// # Errors
///
/// 403 for a role that may not work tickets, 404 for an unknown ticket,
/// 422 for an empty text or a sender that cannot be mailed.
pub async fn reply(
    state: &super::AppState,
    caller: &Caller,
    number: &str,
    text: &str,
) -> Result<String, WebError> {
    reply_after(state, caller, number, text, std::time::Duration::ZERO).await
}

/// Refuses to work on a ticket that was merged into another.
async fn not_merged(tx: &mut crate::store::Tx, number: &str) -> Result<(), WebError> {
    let survivor = tx.lock_surviving(number).await?;
    if survivor != number.trim().to_ascii_uppercase() {
        return Err(WebError::Unprocessable(format!(
            "{number} was merged into {survivor}: work on {survivor}, or undo the merge"
        )));
    }
    Ok(())
}

/// Like [`reply`], but no sender takes the reply before `hold` has
/// passed: until then the agent can take it back
/// ([`crate::store::Store::undo_send`]). It is in the outbox at once, so a
/// restart inside the window still sends it, once. The agent's reply
/// draft on the ticket is cleared in the same transaction.
///
/// # Errors
///
/// As [`reply`].
pub async fn reply_after(
    state: &super::AppState,
    caller: &Caller,
    number: &str,
    text: &str,
    hold: std::time::Duration,
) -> Result<String, WebError> {
    caller.require(Action::WorkTickets)?;
    let text = checked_text(text)?;
    let unique = unique()?;
    let mut tx = state.store.begin("").await?;
    // Counted from when this transaction may write: the whole window is the agent's.
    let due = crate::store::stamp(
        chrono::Utc::now() + chrono::Duration::from_std(hold).unwrap_or_default(),
    );
    not_merged(&mut tx, number).await?;
    let target = tx.reply_target(number).await?;
    let out = state
        .replier
        .agent_reply(&AgentReply {
            ticket: &target.number,
            subject: &target.subject,
            recipient: &target.sender,
            name: &target.sender_name,
            language: target.language,
            in_reply_to: target.latest_inbound.as_deref(),
            thread_ids: &target.thread_ids,
            text,
            unique: &unique,
        })
        .map_err(|e| WebError::Unprocessable(e.to_string()))?;
    tx.queue_reply_due(
        &NewOutboxEntry {
            ticket: Some(&target.number),
            notice: Notice::Agent.as_str(),
            message_id: &out.message_id,
            in_reply_to: &out.in_reply_to,
            envelope_from: &out.envelope_from,
            recipient: &out.recipient,
            raw: &out.raw,
        },
        &due,
    )
    .await?;
    tx.clear_draft(&caller.agent.email, &target.number, DraftKind::Reply)
        .await?;
    tx.add_authored_message(
        target.id,
        &ThreadMessage {
            direction: "out",
            message_id: &out.message_id,
            from: &out.envelope_from,
            subject: &out.subject,
            body: &out.body,
            outsider: false,
            html: None,
        },
        &caller.agent.email,
    )
    .await?;
    let actor = caller.actor();
    tx.record_event(&target.number, &actor, "reply", None, Some(&out.message_id))
        .await?;
    if target.status == TicketStatus::New {
        tx.set_status(target.id, TicketStatus::Open).await?;
        tx.record_event(&target.number, &actor, "status", Some("new"), Some("open"))
            .await?;
    }
    tx.commit().await?;
    state.forget_counts();
    tracing::info!(
        ticket = target.number,
        agent = caller.agent.email,
        "agent reply queued"
    );
    Ok(out.message_id)
}

/// Adds an internal note (never mailed).
///
/// # Errors
///
/// As [`reply`].
pub async fn note(
    state: &super::AppState,
    caller: &Caller,
    number: &str,
    text: &str,
) -> Result<(), WebError> {
    caller.require(Action::WorkTickets)?;
    let text = checked_text(text)?;
    let message_id = format!("sd.{}.note@workspace.invalid", unique()?);
    let mut tx = state.store.begin("").await?;
    not_merged(&mut tx, number).await?;
    let target = tx.reply_target(number).await?;
    tx.clear_draft(&caller.agent.email, &target.number, DraftKind::Note)
        .await?;
    tx.add_authored_message(
        target.id,
        &ThreadMessage {
            direction: "note",
            message_id: &message_id,
            from: &caller.agent.email,
            subject: "",
            body: text,
            outsider: false,
            html: None,
        },
        &caller.agent.email,
    )
    .await?;
    tx.record_event(
        &target.number,
        &caller.actor(),
        "note",
        None,
        Some(&message_id),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// What an agent asks to change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct Patch {
    pub category: Option<Category>,
    pub chargeable_reason: Option<Option<ChargeReason>>,
    pub status: Option<TicketStatus>,
    pub assignee: Option<Option<String>>,
    pub charge_approved: Option<Option<bool>>,
    pub priority: Option<Priority>,
}

impl Patch {
    pub fn is_empty(&self) -> bool {
        self.priority.is_none()
            && self.category.is_none()
            && self.chargeable_reason.is_none()
            && self.status.is_none()
            && self.assignee.is_none()
            && self.charge_approved.is_none()
    }
}

/// Applies a change: a re-sort becomes a correction that training reads;
/// every changed field an audit event. Taking a ticket or giving one's own
/// back is any agent's; assigning it to someone else, or taking it from
/// someone else, is a lead's.
///
/// # Errors
///
/// 403 for what the role does not allow, 404 for an unknown ticket, 422
/// for an assignee who is not an active agent.
pub async fn change(
    state: &super::AppState,
    caller: &Caller,
    number: &str,
    patch: &Patch,
) -> Result<Vec<(String, Option<String>, Option<String>)>, WebError> {
    caller.require(Action::WorkTickets)?;
    if let Some(into) = state.store.merge_state(number).await?.merged_into {
        return Err(WebError::Unprocessable(format!(
            "{} was merged into {}: work on {}, or undo the merge",
            into.from, into.into, into.into
        )));
    }
    if let Some(assignee) = &patch.assignee {
        let (current, _) = state.store.ticket(number).await?;
        let me = &caller.agent.email;
        let new = assignee.as_deref().map(|a| a.trim().to_lowercase());
        let touches_others = new.as_deref().is_some_and(|a| a != me)
            || current.assignee.as_deref().is_some_and(|a| a != me);
        if touches_others && current.assignee != new {
            caller.require(Action::AssignOthers)?;
        }
        if let Some(a) = &new {
            if state.store.active_agent(a).await?.is_none() {
                return Err(WebError::Unprocessable(format!(
                    "assignee: {a} is not an active agent"
                )));
            }
        }
    }
    let change = TicketChange {
        category: patch.category,
        chargeable_reason: patch.chargeable_reason,
        status: patch.status,
        assignee: patch
            .assignee
            .clone()
            .map(|a| a.map(|a| a.trim().to_lowercase())),
        charge_approved: patch.charge_approved,
        priority: patch.priority,
    };
    let changed = state
        .store
        .change_ticket(number, &change, &caller.actor())
        .await?;
    state.forget_counts();
    Ok(changed)
}
