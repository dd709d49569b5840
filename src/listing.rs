//! How tickets, a ticket's thread, intake records and queued replies look in
//! a terminal: the text `tickets list`, `tickets show`, `intake list`,
//! `outbox list` and the demo print. (`--json` prints the store's views as
//! they are.)
//!
//! Only formatting: every function takes what the store returned and gives
//! back text; nothing here reads or writes anything.

use std::fmt::Write;

use crate::domain::{Category, Priority};
use crate::registry::{Customer, Person};
use crate::store::{IntakeView, OutboxEntry, ThreadEntry, TicketView};

/// `s` cut to `n` characters, with `…` where it was cut.
pub fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// The sorting's confidence kept on a ticket (0 when missing).
fn confidence(t: &TicketView) -> f64 {
    t.evidence
        .get("confidence")
        .and_then(|c| c.as_f64())
        .unwrap_or(0.0)
}

/// The queues: per category, a line per ticket with status, language,
/// customer, subject and what an agent should know.
pub fn queues(tickets: &[TicketView]) -> String {
    let mut out = String::new();
    for category in Category::ALL {
        let queue: Vec<&TicketView> = tickets.iter().filter(|t| t.category == category).collect();
        let _ = writeln!(out, "{category} ({})", queue.len());
        for t in queue {
            let charge = match &t.chargeable_reason {
                Some(r) => format!("  [chargeable: {r}]"),
                None => String::new(),
            };
            let priority = match t.priority {
                Priority::Normal => String::new(),
                p => format!("  [{}]", p.as_str().to_uppercase()),
            };
            let attention = t
                .attention
                .as_deref()
                .map(|a| format!("  ! {a}"))
                .unwrap_or_default();
            let due = t
                .sla
                .sla_next_due
                .as_deref()
                .map(|d| format!("  due {}", crate::web::time::brussels(d)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {}  {:<17} {}  {:<32} {}{priority}{charge}{due}{attention}",
                t.number,
                t.status,
                t.language,
                truncate(&t.customer, 32),
                truncate(&t.subject, 60),
            );
        }
    }
    out
}

/// Webhook deliveries, newest first (their `hook` already shortened to
/// its origin by the caller: the url may hold the receiver's token).
pub fn webhooks(deliveries: &[crate::store::WebhookDelivery]) -> String {
    let mut out = String::new();
    if deliveries.is_empty() {
        let _ = writeln!(out, "no webhook deliveries");
    }
    for d in deliveries {
        let state = match d.status.as_str() {
            "delivered" => format!("delivered {}", d.delivered_at.as_deref().unwrap_or("")),
            "pending" if d.attempts > 0 => format!("retry at {}", d.next_attempt_at),
            other => other.to_string(),
        };
        let _ = writeln!(
            out,
            "{:>6}  {:<22} {}  {}  attempts {}  {}{}",
            d.id,
            d.event,
            d.ticket_number,
            d.hook,
            d.attempts,
            state,
            d.last_error
                .as_deref()
                .map(|e| format!("  ({e})"))
                .unwrap_or_default()
        );
    }
    out
}

/// The desk's stored models: which one is in use and how each did on the
/// held-out mail.
pub fn models(models: &[crate::store::StoredModel]) -> String {
    let mut out = String::new();
    if !models.iter().any(|m| m.active) {
        let _ = writeln!(out, "* built-in   the model built into the binary");
    }
    for m in models {
        let figures = serde_json::from_value::<crate::learn::HeldOut>(m.report["held_out"].clone())
            .map(|h| h.to_string())
            .unwrap_or_else(|_| "no figures".to_string());
        let _ = writeln!(
            out,
            "{} {:<10} {}  {} correction(s)  {}\n             {}",
            if m.active { "*" } else { " " },
            m.id,
            m.created_at,
            m.corrections,
            m.note,
            figures
        );
    }
    if models.iter().any(|m| m.active) {
        let _ = writeln!(out, "  builtin    the model built into the binary");
    }
    out
}

/// One ticket: its sorting and why, its charge decision, and its thread.
pub fn ticket(t: &TicketView, thread: &[ThreadEntry]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}  {}", t.number, t.subject);
    let _ = writeln!(out, "  category   {}", t.category);
    let _ = writeln!(
        out,
        "  chargeable {}",
        t.chargeable_reason
            .map_or("no (within the contract)", |r| r.as_str())
    );
    if let (Some(_), Some(sentence)) = (
        t.chargeable_reason,
        t.evidence.get("reason_sentence").and_then(|s| s.as_str()),
    ) {
        let _ = writeln!(out, "  because    \"{sentence}\"");
    }
    if t.priority == Priority::Normal {
        let _ = writeln!(out, "  priority   normal");
    } else {
        let named = |key: &str| -> Vec<String> {
            t.evidence
                .get(key)
                .and_then(|r| r.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|r| r.get(0).and_then(|v| v.as_str()).map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let rules: Vec<String> = named("rules")
            .into_iter()
            .filter(|id| id.starts_with("priority."))
            .collect();
        // The model's features include the rules that fired (`r:…`),
        // already named above.
        let words: Vec<String> = named("priority_features")
            .into_iter()
            .filter(|w| !w.starts_with("r:priority."))
            .collect();
        let _ = writeln!(
            out,
            "  priority   {} ({})",
            t.priority,
            rules
                .iter()
                .chain(words.iter())
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let _ = writeln!(out, "  status     {}", t.status);
    sla_lines(&mut out, &t.sla);
    let _ = writeln!(
        out,
        "  customer   {}{}",
        t.customer,
        t.campus
            .as_deref()
            .map(|c| format!(" (campus {c})"))
            .unwrap_or_default()
    );
    let _ = writeln!(out, "  sender     {} <{}>", t.sender_name, t.sender);
    let _ = writeln!(out, "  language   {}", t.language);
    if let Some(a) = &t.attention {
        let _ = writeln!(out, "  attention  {a}");
    }
    if let Some(r) = &t.related_ticket {
        let _ = writeln!(out, "  continues  {r}");
    }
    if let Some(approved) = t.charge_approved {
        let _ = writeln!(
            out,
            "  charge     {} ({}){}",
            if approved { "approved" } else { "refused" },
            t.charge_decision.as_deref().unwrap_or(""),
            match (&t.charge_decided_by, &t.charge_decided_message) {
                (Some(by), Some(id)) => format!(" by {by}, in <{id}>"),
                _ => String::new(),
            }
        );
    }
    let _ = writeln!(out, "  created    {}", t.created_at);
    let confidence = confidence(t);
    let _ = writeln!(
        out,
        "  sorted by  confidence {confidence:.2}{}",
        if confidence < f64::from(crate::triage::UNSURE_BELOW) {
            " (low: please check the category)"
        } else {
            ""
        }
    );
    if let Some(rules) = t.evidence.get("rules").and_then(|r| r.as_array()) {
        for r in rules {
            if let (Some(id), Some(score)) = (
                r.get(0).and_then(|v| v.as_str()),
                r.get(1).and_then(|v| v.as_f64()),
            ) {
                let _ = writeln!(out, "             {id} (+{score:.1})");
            }
        }
    }
    for m in thread {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "--- {} {} <{}> {}",
            match (m.direction.as_str(), m.outsider) {
                ("in", true) => {
                    "from an outsider (not a registered person of the customer; decided nothing)"
                }
                ("in", false) => "from",
                ("note", _) => "internal note by",
                ("bounce", _) => "returned mail (a reply of ours bounced), from",
                _ => "to customer, by",
            },
            m.created_at,
            m.message_id,
            m.from
        );
        let _ = writeln!(out, "Subject: {}", m.subject);
        let _ = writeln!(out, "{}", m.body.trim_end());
    }
    out
}

/// One intake record: outcome, ticket, sender, subject, what happened.
pub fn intake_line(i: &IntakeView) -> String {
    format!(
        "{:<13} {:<10} {:<40} {}  {}",
        i.outcome,
        i.ticket.as_deref().unwrap_or("-"),
        truncate(&i.from, 40),
        truncate(&i.subject, 50),
        i.detail
    )
}

/// One queued, sent or failed reply.
pub fn outbox_line(e: &OutboxEntry) -> String {
    format!(
        "{:>6}  {:<8} {:<12} {:<10} {:<40} attempts {}  {}",
        e.id,
        e.status,
        e.notice,
        e.ticket.as_deref().unwrap_or("-"),
        truncate(&e.recipient, 40),
        e.attempts,
        e.last_error.as_deref().unwrap_or("")
    )
}

/// One customer: name, contract status, campuses.
pub fn customer_line(c: &Customer) -> String {
    let line = format!(
        "{:<40} {:<10} {}",
        truncate(&c.name, 40),
        c.status,
        c.campuses.join(";")
    );
    match &c.sla {
        Some(tier) => format!("{line}  sla: {tier}"),
        None => line,
    }
}

/// A ticket's SLA clock for `tickets show`: the tier and targets, the
/// due times (Europe/Brussels), the first answer, and a clock standing still.
fn sla_lines(out: &mut String, sla: &crate::store::SlaView) {
    let Some(tier) = &sla.sla_tier else {
        let _ = writeln!(out, "  sla        none");
        return;
    };
    let hours = |m: Option<i64>| match m {
        Some(m) if m % 60 == 0 => format!("{}h", m / 60),
        Some(m) if m < 60 => format!("{m}m"),
        Some(m) => format!("{}h{:02}m", m / 60, m % 60),
        None => "?".into(),
    };
    let _ = writeln!(
        out,
        "  sla        {tier} (first response {}, resolution {}, business hours)",
        hours(sla.sla_response_minutes),
        hours(sla.sla_resolution_minutes)
    );
    let at = |t: &Option<String>| t.as_deref().map(crate::web::time::brussels);
    if let Some(due) = at(&sla.first_response_due) {
        let answered = match (&sla.first_response_at, &sla.first_response_due) {
            (Some(a), Some(d)) if a > d => {
                format!(", answered {} (late)", crate::web::time::brussels(a))
            }
            (Some(a), _) => format!(", answered {}", crate::web::time::brussels(a)),
            (None, _) => String::new(),
        };
        let _ = writeln!(out, "  respond by {due}{answered}");
    }
    if let Some(due) = at(&sla.resolution_due) {
        let _ = writeln!(out, "  resolve by {due}");
    }
    if let Some(since) = at(&sla.sla_paused_since) {
        let _ = writeln!(out, "  clock      stands still since {since}");
    }
}

/// One reference person, `(deactivated)` when no longer registered.
pub fn person_line(p: &Person, active: bool) -> String {
    format!(
        "{:<40} {:<28} {:<32} {:<9} {:<10} {}{}",
        truncate(&p.email, 40),
        truncate(&p.name, 28),
        truncate(&p.customer, 32),
        p.role,
        p.campus.as_deref().unwrap_or("-"),
        p.language,
        if active { "" } else { "  (deactivated)" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_marks_the_cut() {
        assert_eq!(truncate("Résidence Les Tilleuls", 9), "Résidenc…");
        assert_eq!(truncate("kort", 9), "kort");
    }
}
