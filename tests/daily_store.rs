//! Daily work in the store, on SQLite and PostgreSQL: drafts that survive
//! changes and move with a merge; merging a customer's tickets and undoing
//! it exactly, with mail for the merged ticket landing on the survivor;
//! replies held for undo that are either taken back or sent, never both.
//! And end to end over real Dovecot: a customer's answer to a merged
//! ticket lands on the result.

#[macro_use]
mod support;

use std::path::Path;

use servicedesk::config::Config;
use servicedesk::domain::{Outcome, TicketStatus};
use servicedesk::pipeline::{Pipeline, RawMessage};
use servicedesk::store::{
    DraftKind, MergeError, NewOutboxEntry, Store, ThreadMessage, TicketChange, UndoSendError,
};
use support::{Backend, Db};
use tempfile::TempDir;

on_both_backends!(
    drafts_survive_changes_and_move_with_a_merge,
    a_merge_joins_threads_and_its_undo_restores_the_split,
    merges_that_cannot_be_are_refused,
    a_held_reply_is_taken_back_or_sent_never_both,
    claims_and_undos_racing_never_both_win,
    an_answer_to_a_merged_ticket_lands_on_the_result,
    mail_arriving_during_a_merge_lands_on_the_result,
);

async fn fresh(backend: Backend) -> (TempDir, Db, Store) {
    let dir = support::short_tempdir();
    let db = backend.db(dir.path()).await;
    let store = db.store().await;
    support::import_standard_registry(&store).await;
    (dir, db, store)
}

fn pipeline(db: &Db, store: &Store) -> Pipeline {
    let text = format!(
        "[database]\nurl = \"{}\"\n[support]\naddress = \"support@example.test\"\nticket_prefix = \"CS\"\n",
        db.url()
    );
    let config = Config::parse(Path::new("daily-test.toml"), &text).expect("config");
    Pipeline::new(&config, store.clone()).expect("pipeline")
}

/// A mail through the pipeline: its outcome and ticket.
async fn ingest(pipeline: &Pipeline, store: &Store, raw: &[u8]) -> (Outcome, Option<String>) {
    let registry = store.registry().await.expect("registry");
    let p = pipeline
        .process(
            &RawMessage {
                bytes: raw,
                source: "stdin",
                source_key: None,
                oversized: None,
            },
            &registry,
        )
        .await
        .expect("process");
    (p.outcome, p.ticket)
}

/// A new ticket from a registered person of WZC De Linde (or, with
/// `tilleuls`, of Résidence Les Tilleuls).
async fn new_ticket(pipeline: &Pipeline, store: &Store, id: &str, tilleuls: bool) -> String {
    let from = if tilleuls {
        "Sophie Lambert <sophie.lambert@lestilleuls.example>"
    } else {
        "Koen De Witte <koen.dewitte@delinde.example>"
    };
    let raw = format!(
        "Message-ID: <{id}>\r\nFrom: {from}\r\nTo: support@example.test\r\n\
         Subject: Storing {id}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Bij het opslaan van een zorgplan krijgen we de foutmelding ZP-2041 ({id}).\r\n"
    );
    let (outcome, ticket) = ingest(pipeline, store, raw.as_bytes()).await;
    assert_eq!(outcome, Outcome::Ticket);
    ticket.expect("a ticket")
}

/// The customer's answer: by `In-Reply-To` (`reply_to`) or by the token in
/// the subject only (`token`).
fn answer(id: &str, reply_to: Option<&str>, token: Option<&str>, text: &str) -> Vec<u8> {
    let mut raw = format!(
        "Message-ID: <{id}>\r\nFrom: Koen De Witte <koen.dewitte@delinde.example>\r\nTo: support@example.test\r\n"
    );
    raw += &match token {
        Some(t) => format!("Subject: Re: Storing [{t}]\r\n"),
        None => "Subject: Re: Storing\r\n".to_string(),
    };
    if let Some(r) = reply_to {
        raw += &format!("In-Reply-To: <{r}>\r\nReferences: <{r}>\r\n");
    }
    raw += &format!("Content-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n");
    raw.into_bytes()
}

/// The Message-IDs of a ticket's thread, in order.
async fn thread(store: &Store, number: &str) -> Vec<String> {
    store
        .ticket(number)
        .await
        .expect("ticket")
        .1
        .into_iter()
        .map(|m| m.message_id)
        .collect()
}

/// The inbound Message-IDs of a ticket, in order.
async fn inbound(store: &Store, number: &str) -> Vec<String> {
    store.ticket(number).await.expect("ticket").0.message_ids
}

async fn fields(store: &Store, number: &str) -> Vec<(String, Option<String>, Option<String>)> {
    store
        .ticket_events(number)
        .await
        .expect("events")
        .into_iter()
        .map(|e| (e.field, e.old_value, e.new_value))
        .collect()
}

async fn draft(store: &Store, agent: &str, number: &str, kind: DraftKind) -> Option<String> {
    store
        .drafts(agent, number)
        .await
        .expect("drafts")
        .into_iter()
        .find(|d| d.kind == kind)
        .map(|d| d.text)
}

const AN: &str = "an.agent@desk.example";
const BO: &str = "bo.agent@desk.example";

async fn drafts_survive_changes_and_move_with_a_merge(backend: Backend) {
    let (_dir, db, store) = fresh(backend).await;
    let p = pipeline(&db, &store);
    let a = new_ticket(&p, &store, "d1@delinde.example", false).await;
    let b = new_ticket(&p, &store, "d2@delinde.example", false).await;

    store
        .save_draft(AN, &a, DraftKind::Reply, "Dag Koen,\n\nWe kijken")
        .await
        .expect("save");
    store
        .save_draft(AN, &a, DraftKind::Note, "Belde om 10u")
        .await
        .expect("save");
    store
        .save_draft(BO, &a, DraftKind::Reply, "Bo's own words")
        .await
        .expect("save");
    // Typing on: the last text is kept, one per agent, ticket and kind.
    store
        .save_draft(AN, &a, DraftKind::Reply, "Dag Koen,\n\nWe kijken het na.")
        .await
        .expect("save");
    assert_eq!(
        draft(&store, AN, &a, DraftKind::Reply).await.as_deref(),
        Some("Dag Koen,\n\nWe kijken het na.")
    );
    assert_eq!(
        draft(&store, BO, &a, DraftKind::Reply).await.as_deref(),
        Some("Bo's own words")
    );

    // A status and owner change leave drafts alone.
    store
        .change_ticket(
            &a,
            &TicketChange {
                status: Some(TicketStatus::Waiting),
                assignee: Some(Some(BO.into())),
                ..Default::default()
            },
            "agent:bo.agent@desk.example",
        )
        .await
        .expect("change");
    assert_eq!(store.drafts(AN, &a).await.unwrap().len(), 2);

    // An unknown ticket takes no draft; an empty text forgets one.
    assert!(store
        .save_draft(AN, "CS-999999", DraftKind::Reply, "x")
        .await
        .is_err());
    store
        .save_draft(BO, &a, DraftKind::Reply, "  ")
        .await
        .expect("forget");
    assert_eq!(draft(&store, BO, &a, DraftKind::Reply).await, None);

    // A merge moves them; where the agent has one on both, both texts stay.
    store
        .save_draft(AN, &b, DraftKind::Reply, "Op B begonnen")
        .await
        .expect("save");
    store.merge_tickets(&a, &b, "cli").await.expect("merge");
    assert!(store.drafts(AN, &a).await.unwrap().is_empty());
    assert_eq!(
        draft(&store, AN, &b, DraftKind::Reply).await.as_deref(),
        Some("Op B begonnen\n\nDag Koen,\n\nWe kijken het na.")
    );
    assert_eq!(
        draft(&store, AN, &b, DraftKind::Note).await.as_deref(),
        Some("Belde om 10u")
    );

    // A page still open on A saves onto B.
    store
        .save_draft(AN, &a, DraftKind::Note, "Belde om 10u, en om 11u")
        .await
        .expect("save");
    assert!(store.drafts(AN, &a).await.unwrap().is_empty());
    assert_eq!(
        draft(&store, AN, &b, DraftKind::Note).await.as_deref(),
        Some("Belde om 10u, en om 11u")
    );
    // A new connection (a restart) reads the same.
    let again = db.store().await;
    assert_eq!(again.drafts(AN, &b).await.unwrap().len(), 2);
}

async fn a_merge_joins_threads_and_its_undo_restores_the_split(backend: Backend) {
    let (_dir, db, store) = fresh(backend).await;
    let p = pipeline(&db, &store);
    let a = new_ticket(&p, &store, "m1@delinde.example", false).await;
    let b = new_ticket(&p, &store, "m2@delinde.example", false).await;
    // A second mail in A's thread before the merge.
    let (o, t) = ingest(
        &p,
        &store,
        &answer(
            "m1b@delinde.example",
            Some("m1@delinde.example"),
            None,
            "Nog steeds.",
        ),
    )
    .await;
    assert_eq!((o, t.as_deref()), (Outcome::Followup, Some(a.as_str())));
    store
        .change_ticket(
            &a,
            &TicketChange {
                status: Some(TicketStatus::Open),
                ..Default::default()
            },
            "cli",
        )
        .await
        .unwrap();
    let a_thread = thread(&store, &a).await;
    let b_thread = thread(&store, &b).await;
    assert!(a_thread.len() >= 2 && !b_thread.is_empty());

    let merged = store
        .merge_tickets(&a.to_lowercase(), &b, "agent:an.agent@desk.example")
        .await
        .expect("merge");
    assert_eq!(
        (merged.from.as_str(), merged.into.as_str()),
        (a.as_str(), b.as_str())
    );
    assert_eq!(merged.messages as usize, a_thread.len());
    // The threads are joined on B, in the order they came; A is closed,
    // empty, and points to B.
    let joined = thread(&store, &b).await;
    let mut expected: Vec<String> = a_thread.iter().chain(&b_thread).cloned().collect();
    let mut got = joined.clone();
    expected.sort();
    got.sort();
    assert_eq!(got, expected);
    // In the order the messages came: A's first mail before B's.
    assert_eq!(
        inbound(&store, &b).await,
        vec![
            "m1@delinde.example",
            "m2@delinde.example",
            "m1b@delinde.example"
        ]
    );
    let (ta, thread_a) = store.ticket(&a).await.unwrap();
    assert_eq!(ta.status, TicketStatus::Closed);
    assert!(thread_a.is_empty());
    let state = store.merge_state(&a).await.unwrap();
    assert_eq!(state.merged_into.map(|m| m.into), Some(b.clone()));
    let state_b = store.merge_state(&b).await.unwrap();
    assert_eq!(
        state_b
            .merged_from
            .iter()
            .map(|m| m.from.as_str())
            .collect::<Vec<_>>(),
        vec![a.as_str()]
    );
    // Audit events on both.
    let ea = fields(&store, &a).await;
    assert!(ea.contains(&("merged_into".into(), None, Some(b.clone()))));
    assert!(ea.contains(&("status".into(), Some("open".into()), Some("closed".into()))));
    assert!(fields(&store, &b)
        .await
        .contains(&("merged_from".into(), None, Some(a.clone()))));

    // The customer's later mail to A lands on B: by In-Reply-To ...
    let (o, t) = ingest(
        &p,
        &store,
        &answer(
            "m1c@delinde.example",
            Some("m1@delinde.example"),
            None,
            "Via de draad.",
        ),
    )
    .await;
    assert_eq!((o, t.as_deref()), (Outcome::Followup, Some(b.as_str())));
    // ... and by the token alone.
    let (o, t) = ingest(
        &p,
        &store,
        &answer("m1d@delinde.example", None, Some(&a), "Via het nummer."),
    )
    .await;
    assert_eq!((o, t.as_deref()), (Outcome::Followup, Some(b.as_str())));
    let on_b = thread(&store, &b).await;
    assert!(on_b.contains(&"m1c@delinde.example".to_string()));
    assert!(on_b.contains(&"m1d@delinde.example".to_string()));
    assert!(thread(&store, &a).await.is_empty());

    // Work on A itself is refused while merged (the web layer says so);
    // the store's undo restores the exact split: A's messages back, the
    // mail that came since stays on B, A's status returns.
    let undone = store.undo_merge(&a, "cli").await.expect("undo");
    assert_eq!(undone.messages as usize, a_thread.len());
    assert_eq!(thread(&store, &a).await, a_thread);
    let b_after = thread(&store, &b).await;
    let mut b_expected = b_thread.clone();
    b_expected.push("m1c@delinde.example".into());
    b_expected.push("m1d@delinde.example".into());
    assert_eq!(b_after, b_expected);
    let (ta, _) = store.ticket(&a).await.unwrap();
    assert_eq!(ta.status, TicketStatus::Open);
    let state = store.merge_state(&a).await.unwrap();
    assert!(state.merged_into.is_none());
    assert!(store.merge_state(&b).await.unwrap().merged_from.is_empty());
    let ea = fields(&store, &a).await;
    assert!(ea.contains(&("merged_into".into(), Some(b.clone()), None)));
    assert!(ea.contains(&("status".into(), Some("closed".into()), Some("open".into()))));
    assert!(fields(&store, &b)
        .await
        .contains(&("merged_from".into(), Some(a.clone()), None)));
    // And mail by A's token goes to A again.
    let (o, t) = ingest(
        &p,
        &store,
        &answer("m1e@delinde.example", None, Some(&a), "Weer apart."),
    )
    .await;
    assert_eq!((o, t.as_deref()), (Outcome::Followup, Some(a.as_str())));
    assert!(matches!(
        store.undo_merge(&a, "cli").await,
        Err(MergeError::NotMerged(_))
    ));
}

async fn merges_that_cannot_be_are_refused(backend: Backend) {
    let (_dir, db, store) = fresh(backend).await;
    let p = pipeline(&db, &store);
    let a = new_ticket(&p, &store, "r1@delinde.example", false).await;
    let b = new_ticket(&p, &store, "r2@delinde.example", false).await;
    let c = new_ticket(&p, &store, "r3@delinde.example", false).await;
    let other = new_ticket(&p, &store, "r4@lestilleuls.example", true).await;

    let e = store.merge_tickets(&a, &a, "cli").await.unwrap_err();
    assert!(matches!(e, MergeError::IntoItself), "{e}");
    let e = store.merge_tickets(&a, &other, "cli").await.unwrap_err();
    assert!(
        matches!(e, MergeError::DifferentCustomers { .. })
            && e.to_string().contains("different customers"),
        "{e}"
    );
    let e = store
        .merge_tickets(&a, "CS-999999", "cli")
        .await
        .unwrap_err();
    assert!(matches!(e, MergeError::NotFound(_)), "{e}");
    // Nothing changed.
    assert_eq!(inbound(&store, &a).await, vec!["r1@delinde.example"]);
    assert!(fields(&store, &a)
        .await
        .iter()
        .all(|(f, _, _)| f != "merged_into"));

    // A into B, then B into C: A cannot be merged again, nor anything into
    // A or B; A's merge is undone only after B's.
    store.merge_tickets(&a, &b, "cli").await.unwrap();
    let e = store.merge_tickets(&a, &c, "cli").await.unwrap_err();
    assert!(matches!(e, MergeError::AlreadyMerged(..)), "{e}");
    store.merge_tickets(&b, &c, "cli").await.unwrap();
    let e = store.merge_tickets(&c, &a, "cli").await.unwrap_err();
    assert!(
        matches!(&e, MergeError::TargetMerged(_, survivor) if *survivor == c),
        "{e}"
    );
    assert_eq!(
        inbound(&store, &c).await,
        vec![
            "r1@delinde.example",
            "r2@delinde.example",
            "r3@delinde.example"
        ]
    );
    let e = store.undo_merge(&a, "cli").await.unwrap_err();
    assert!(matches!(e, MergeError::UndoOutOfOrder { .. }), "{e}");
    // Mail by A's token follows the chain to C.
    let (o, t) = ingest(
        &p,
        &store,
        &answer("r1b@delinde.example", None, Some(&a), "Ketting."),
    )
    .await;
    assert_eq!((o, t.as_deref()), (Outcome::Followup, Some(c.as_str())));
    store.undo_merge(&b, "cli").await.unwrap();
    store.undo_merge(&a, "cli").await.unwrap();
    assert_eq!(inbound(&store, &a).await, vec!["r1@delinde.example"]);
    assert_eq!(inbound(&store, &b).await, vec!["r2@delinde.example"]);
    assert_eq!(
        inbound(&store, &c).await,
        vec!["r3@delinde.example", "r1b@delinde.example"]
    );
}

/// Queues an agent's reply on a ticket as the ticket page does: in the
/// outbox, due `hold_ms` from now, and on the thread.
async fn queue_held(store: &Store, number: &str, message_id: &str, text: &str, hold_ms: i64) {
    let due =
        servicedesk::store::stamp(chrono::Utc::now() + chrono::Duration::milliseconds(hold_ms));
    let mut tx = store.begin("").await.unwrap();
    let id = tx.ticket_id(number).await.unwrap().expect("ticket");
    tx.queue_reply_due(
        &NewOutboxEntry {
            ticket: Some(number),
            notice: "agent",
            message_id,
            in_reply_to: "",
            envelope_from: "support@example.test",
            recipient: "koen.dewitte@delinde.example",
            raw: text.as_bytes(),
        },
        &due,
    )
    .await
    .unwrap();
    tx.add_authored_message(
        id,
        &ThreadMessage {
            direction: "out",
            message_id,
            from: "support@example.test",
            subject: "Re: Storing",
            body: text,
            outsider: false,
            html: None,
        },
        AN,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

fn stamp_in(ms: i64) -> String {
    servicedesk::store::stamp(chrono::Utc::now() + chrono::Duration::milliseconds(ms))
}

async fn a_held_reply_is_taken_back_or_sent_never_both(backend: Backend) {
    let (_dir, db, store) = fresh(backend).await;
    let p = pipeline(&db, &store);
    let a = new_ticket(&p, &store, "h1@delinde.example", false).await;
    // The acknowledgement goes out first.
    let ack = store
        .claim_due("sender", &servicedesk::store::now(), &stamp_in(30_000), 10)
        .await
        .unwrap();
    store
        .mark_sent(&ack.iter().map(|e| e.id).collect::<Vec<_>>())
        .await
        .unwrap();
    let before = store.outbox().await.unwrap().len();

    // Held for a minute: no sender takes it now; it is listed; undo takes
    // it out of the outbox and the thread, into the agent's draft.
    queue_held(
        &store,
        &a,
        "held-1@desk",
        "Dag Koen, eerste versie.",
        60_000,
    )
    .await;
    let claimed = store
        .claim_due("sender", &servicedesk::store::now(), &stamp_in(30_000), 10)
        .await
        .unwrap();
    assert!(claimed.is_empty(), "{claimed:?}");
    let first_response = |store: Store, a: String| async move {
        store.ticket(&a).await.unwrap().0.sla.first_response_at
    };
    assert!(first_response(store.clone(), a.clone()).await.is_some());
    let held = store
        .held_replies(AN, &a, &servicedesk::store::now())
        .await
        .unwrap();
    assert_eq!(held.len(), 1);
    assert!(store
        .held_replies(BO, &a, &servicedesk::store::now())
        .await
        .unwrap()
        .is_empty());
    // Only its author takes it back.
    assert!(matches!(
        store.undo_send(BO, &a, "held-1@desk", "agent:bo").await,
        Err(UndoSendError::NotFound(_))
    ));
    store
        .save_draft(AN, &a, DraftKind::Reply, "PS: nieuw begonnen")
        .await
        .unwrap();
    let draft_text = store
        .undo_send(AN, &a, "held-1@desk", "agent:an.agent@desk.example")
        .await
        .expect("undo");
    assert_eq!(draft_text, "Dag Koen, eerste versie.\n\nPS: nieuw begonnen");
    assert_eq!(
        draft(&store, AN, &a, DraftKind::Reply).await.as_deref(),
        Some(draft_text.as_str())
    );
    assert_eq!(store.outbox().await.unwrap().len(), before);
    assert!(!thread(&store, &a)
        .await
        .contains(&"held-1@desk".to_string()));
    assert_eq!(
        first_response(store.clone(), a.clone()).await,
        None,
        "a reply taken back answered nobody"
    );
    assert!(fields(&store, &a).await.contains(&(
        "reply_undone".into(),
        None,
        Some("held-1@desk".into())
    )));
    assert!(matches!(
        store.undo_send(AN, &a, "held-1@desk", "agent:an").await,
        Err(UndoSendError::NotFound(_))
    ));

    // Once a sender has claimed it (here one whose clock runs ahead), it
    // cannot be taken back: it stays queued, claimed, and on the thread.
    queue_held(&store, &a, "held-2@desk", "Tweede versie.", 60_000).await;
    let claimed = store
        .claim_due("sender", &stamp_in(61_000), &stamp_in(120_000), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert!(matches!(
        store.undo_send(AN, &a, "held-2@desk", "agent:an").await,
        Err(UndoSendError::TooLate)
    ));
    assert!(thread(&store, &a)
        .await
        .contains(&"held-2@desk".to_string()));
    store.mark_sent(&[claimed[0].id]).await.unwrap();
    assert!(matches!(
        store.undo_send(AN, &a, "held-2@desk", "agent:an").await,
        Err(UndoSendError::TooLate)
    ));

    // Past its window (due now), it is the sender's.
    queue_held(&store, &a, "held-3@desk", "Derde.", 0).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert!(matches!(
        store.undo_send(AN, &a, "held-3@desk", "agent:an").await,
        Err(UndoSendError::TooLate)
    ));
    assert!(store
        .held_replies(AN, &a, &servicedesk::store::now())
        .await
        .unwrap()
        .is_empty());
}

/// Senders claiming and the agent undoing at the same moment: every reply
/// ends up either claimed (and still in the outbox) or taken back (gone,
/// in the draft), never both, never neither.
async fn claims_and_undos_racing_never_both_win(backend: Backend) {
    let (_dir, db, store) = fresh(backend).await;
    let p = pipeline(&db, &store);
    let a = new_ticket(&p, &store, "race@delinde.example", false).await;
    const N: usize = 12;
    for i in 0..N {
        queue_held(
            &store,
            &a,
            &format!("race-{i}@desk"),
            &format!("versie {i}"),
            60_000,
        )
        .await;
    }
    let claimer = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut claimed = Vec::new();
            for _ in 0..N {
                let got = store
                    .claim_due("sender", &stamp_in(61_000), &stamp_in(600_000), 1)
                    .await
                    .unwrap();
                claimed.extend(got.into_iter().map(|e| e.message_id));
                tokio::task::yield_now().await;
            }
            claimed
        })
    };
    let undoer = {
        let store = store.clone();
        let a = a.clone();
        tokio::spawn(async move {
            let mut undone = Vec::new();
            for i in (0..N).rev() {
                let id = format!("race-{i}@desk");
                match store.undo_send(AN, &a, &id, "agent:an").await {
                    Ok(_) => undone.push(id),
                    Err(UndoSendError::TooLate) => {}
                    Err(e) => panic!("{id}: {e}"),
                }
            }
            undone
        })
    };
    let claimed = claimer.await.unwrap();
    let undone = undoer.await.unwrap();
    let queued: Vec<String> = store
        .outbox()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.message_id)
        .filter(|m| m.starts_with("race-"))
        .collect();
    let on_thread = thread(&store, &a).await;
    for i in 0..N {
        let id = format!("race-{i}@desk");
        let c = claimed.contains(&id);
        let u = undone.contains(&id);
        assert!(c != u, "{id}: claimed {c}, undone {u}");
        assert_eq!(queued.contains(&id), c, "{id} in the outbox");
        assert_eq!(on_thread.contains(&id), c, "{id} on the thread");
    }
    let text = draft(&store, AN, &a, DraftKind::Reply)
        .await
        .unwrap_or_default();
    for id in &undone {
        let n = id.trim_start_matches("race-").trim_end_matches("@desk");
        assert!(text.contains(&format!("versie {n}")), "{text}");
    }
}

/// End to end over real servers: the customer answers the merged ticket's
/// acknowledgement (by its Message-ID) and then names its token; both land
/// on the surviving ticket, which `tickets merge` named.
async fn an_answer_to_a_merged_ticket_lands_on_the_result(backend: Backend) {
    let servers = support::MailServers::start();
    let db = backend.db(servers.dir()).await;
    let store = db.store().await;
    support::import_standard_registry(&store).await;
    let config = support::config(&servers, &db);
    servers
        .append("INBOX", &support::simple_incident("e2e-a@delinde.example"))
        .await;
    servers
        .append(
            "INBOX",
            &answer(
                "e2e-b@delinde.example",
                None,
                None,
                "Tweede melding over de facturatie.",
            ),
        )
        .await;
    servicedesk::daemon::run_once(&config)
        .await
        .expect("run once");
    let acks = servers
        .wait_sent(2, std::time::Duration::from_secs(30))
        .await;
    let tickets = store.tickets(&Default::default()).await.unwrap();
    assert_eq!(tickets.len(), 2);
    let a = tickets
        .iter()
        .find(|t| t.message_ids.contains(&"e2e-a@delinde.example".to_string()))
        .unwrap()
        .number
        .clone();
    let b = tickets
        .iter()
        .find(|t| t.number != a)
        .unwrap()
        .number
        .clone();
    let ack_a = acks
        .iter()
        .find(|s| s.answers("e2e-a@delinde.example"))
        .and_then(|s| s.message_id.clone())
        .expect("A's acknowledgement");

    let out = support::run_servicedesk(
        &config.path,
        servers.dir(),
        &["tickets", "merge", &a, "--into", &b],
        None,
    );
    assert!(out.status.success(), "{}", support::describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("{a}: merged into {b}")),
        "{}",
        support::describe(&out)
    );
    // `tickets show` says where it went, as text and in JSON.
    let show = |json: bool| {
        let mut args = vec!["tickets", "show", a.as_str()];
        if json {
            args.push("--json");
        }
        let out = support::run_servicedesk(&config.path, servers.dir(), &args, None);
        assert!(out.status.success(), "{}", support::describe(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(
        show(false).contains(&format!("merged into {b} by ")),
        "{}",
        show(false)
    );
    let shown: serde_json::Value = serde_json::from_str(&show(true)).expect("JSON");
    assert_eq!(shown["merged_into"], b.as_str());
    // Merging into a ticket of another customer is refused with the reason.
    let out = support::run_servicedesk(
        &config.path,
        servers.dir(),
        &["tickets", "merge", &b, "--into", &b],
        None,
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("into itself"),
        "{}",
        support::describe(&out)
    );

    servers
        .append(
            "INBOX",
            &answer(
                "e2e-c@delinde.example",
                Some(ack_a.trim_matches(['<', '>'])),
                None,
                "Antwoord op de ontvangstbevestiging.",
            ),
        )
        .await;
    servers
        .append(
            "INBOX",
            &answer("e2e-d@delinde.example", None, Some(&a), "Met het nummer."),
        )
        .await;
    servicedesk::daemon::run_once(&config)
        .await
        .expect("run once");
    for id in ["e2e-c@delinde.example", "e2e-d@delinde.example"] {
        let intake = store.intake().await.unwrap();
        let seen = intake
            .iter()
            .find(|i| i.message_id == id)
            .unwrap_or_else(|| panic!("{id} not seen"));
        assert_eq!(seen.outcome, Outcome::Followup, "{id}");
    }
    let on_b = thread(&store, &b).await;
    for id in [
        "e2e-a@delinde.example",
        "e2e-b@delinde.example",
        "e2e-c@delinde.example",
        "e2e-d@delinde.example",
    ] {
        assert!(on_b.contains(&id.to_string()), "{id} on {b}: {on_b:?}");
    }
    assert!(store.tickets(&Default::default()).await.unwrap().len() == 2);
    assert!(thread(&store, &a).await.is_empty());

    // Undone: exactly A's messages go back; what came since stays on B.
    let out = support::run_servicedesk(
        &config.path,
        servers.dir(),
        &["tickets", "unmerge", &a],
        None,
    );
    assert!(out.status.success(), "{}", support::describe(&out));
    let on_a = thread(&store, &a).await;
    assert!(on_a.contains(&"e2e-a@delinde.example".to_string()));
    assert!(!on_a.contains(&"e2e-c@delinde.example".to_string()));
    assert!(!on_a.iter().any(|m| m == "e2e-b@delinde.example"));
}

/// Answers to a ticket arriving while it is merged: each lands on the
/// surviving ticket or, if it came first, moved there with the merge; none
/// is left behind on the merged ticket.
async fn mail_arriving_during_a_merge_lands_on_the_result(backend: Backend) {
    let (_dir, db, store) = fresh(backend).await;
    let p = std::sync::Arc::new(pipeline(&db, &store));
    let a = new_ticket(&p, &store, "busy-a@delinde.example", false).await;
    let b = new_ticket(&p, &store, "busy-b@delinde.example", false).await;
    const N: usize = 8;
    let mut answers = Vec::new();
    for i in 0..N {
        let (p, store) = (p.clone(), store.clone());
        answers.push(tokio::spawn(async move {
            let raw = answer(
                &format!("busy-{i}@delinde.example"),
                Some("busy-a@delinde.example"),
                None,
                "Nog een aanvulling.",
            );
            ingest(&p, &store, &raw).await
        }));
    }
    let merged = store.merge_tickets(&a, &b, "cli").await.expect("merge");
    for a in answers {
        let (outcome, _) = a.await.unwrap();
        assert_eq!(outcome, Outcome::Followup);
    }
    assert!(inbound(&store, &a).await.is_empty(), "left on {a}");
    let on_b = inbound(&store, &b).await;
    for i in 0..N {
        assert!(
            on_b.contains(&format!("busy-{i}@delinde.example")),
            "{on_b:?}"
        );
    }
    // An undo moves back what the merge moved: the answers that came first.
    let undone = store.undo_merge(&a, "cli").await.unwrap();
    assert_eq!(undone.messages, merged.messages);
}
