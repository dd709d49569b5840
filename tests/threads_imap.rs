//! Conversations over real servers: threads that stay one ticket, answers to
//! chargeable notices, reopening, auto-reply limits, loops, bounces, oversized
//! and forged mail. Mail is APPENDed to a private Dovecot, `run_once` runs
//! in-process, replies are read back from the SMTP capture.

mod support;

use std::collections::BTreeSet;

use servicedesk::config::Config;
use servicedesk::daemon;
use servicedesk::store::{IntakeView, Store, TicketChange, TicketFilter, TicketView};
use support::{Backend, Db, MailServers, Options, Sent};

const TO: &str = "Care Solutions Servicedesk <support@example.test>";
const KOEN: &str = "koen.dewitte@delinde.example";

/// A private desk: mail servers, a database with the standard registry, a config.
///
/// Field order is drop order: the store closes before its database goes.
struct Desk {
    store: Store,
    config: Config,
    /// Kept for its lifetime: a PostgreSQL database is dropped with it.
    _db: Db,
    servers: MailServers,
}

impl Desk {
    async fn start(backend: Backend) -> Desk {
        Self::start_with(backend, "").await
    }

    /// `extra` is TOML appended to the configuration (`[limits]`, `[security]`).
    async fn start_with(backend: Backend, extra: &str) -> Desk {
        let servers = MailServers::start();
        let db = backend.db(servers.dir()).await;
        let store = db.store().await;
        support::import_standard_registry(&store).await;
        let config = support::config_with_extra(&servers, &db, &Options::default(), extra);
        Desk {
            store,
            config,
            _db: db,
            servers,
        }
    }

    async fn append(&self, raw: &[u8]) {
        self.servers.append("INBOX", raw).await;
    }

    async fn run_once(&self) -> daemon::RunSummary {
        let summary = daemon::run_once(&self.config)
            .await
            .unwrap_or_else(|e| panic!("run_once: {e:#}"));
        assert_eq!(summary.replies_pending, 0, "{summary:?}");
        assert_eq!(summary.replies_failed, 0, "{summary:?}");
        summary
    }

    async fn tickets(&self) -> Vec<TicketView> {
        let mut t = self
            .store
            .tickets(&TicketFilter::default())
            .await
            .expect("tickets");
        t.sort_by(|a, b| a.number.cmp(&b.number));
        t
    }

    async fn ticket(&self, number: &str) -> TicketView {
        self.store.ticket(number).await.expect("ticket").0
    }

    async fn intake(&self) -> Vec<IntakeView> {
        self.store.intake().await.expect("intake")
    }

    async fn intake_of(&self, message_id: &str) -> Vec<IntakeView> {
        self.intake()
            .await
            .into_iter()
            .filter(|i| i.message_id == message_id)
            .collect()
    }

    fn sent(&self) -> Vec<Sent> {
        self.servers.sent()
    }
}

/// A plain UTF-8 mail; `headers` are extra header lines, each ending in `\n`.
fn mail(message_id: &str, from: &str, subject: &str, headers: &str, body: &str) -> Vec<u8> {
    format!(
        "Message-ID: <{message_id}>\n\
Date: Mon, 03 Mar 2025 09:15:00 +0100\n\
From: {from}\n\
To: {TO}\n\
Subject: {subject}\n\
{headers}\
MIME-Version: 1.0\n\
Content-Type: text/plain; charset=\"utf-8\"\n\
Content-Transfer-Encoding: 8bit\n\
\n\
{body}"
    )
    .into_bytes()
}

/// The reply's Message-ID without angle brackets.
fn id_of(s: &Sent) -> String {
    s.message_id
        .clone()
        .expect("every reply has a Message-ID")
        .trim_matches(['<', '>'])
        .to_string()
}

/// `text` quoted the way mail programs quote what they answer.
fn quoted(header: &str, text: &str) -> String {
    let mut out = format!("\n{header}\n");
    for line in text.lines() {
        out.push_str("> ");
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The single reply that answers `message_id`.
fn only_reply_to(sent: &[Sent], message_id: &str) -> Sent {
    let r: Vec<&Sent> = sent.iter().filter(|s| s.answers(message_id)).collect();
    assert_eq!(r.len(), 1, "replies to {message_id}: {r:#?}");
    r[0].clone()
}

fn outcomes(records: &[IntakeView]) -> Vec<&str> {
    records.iter().map(|r| r.outcome.as_str()).collect()
}

// ------------------------------------------------------------------ threads --

/// A ticket's whole conversation — a reply to the acknowledgement, a reply
/// in the customer's own thread, a mail with only the ticket token — stays
/// on one ticket, and only the first message is acknowledged.
async fn thread_stays_one_ticket(backend: Backend) {
    let desk = Desk::start(backend).await;
    let koen = format!("Koen De Witte <{KOEN}>");

    let first = "thread-first@delinde.example";
    desk.append(&support::simple_incident(first)).await;
    let s = desk.run_once().await;
    assert_eq!((s.processed, s.replies_sent), (1, 1), "{s:?}");
    let ack = only_reply_to(&desk.sent(), first);
    assert_eq!(ack.notice.as_deref(), Some("received"));
    assert!(ack.subject.contains("[CS-000001]"), "{:?}", ack.subject);
    let ack_id = id_of(&ack);

    // 2. The customer answers the acknowledgement.
    let second = "thread-second@delinde.example";
    desk.append(&mail(
        second,
        &koen,
        &format!("Re: {}", ack.subject),
        &format!("In-Reply-To: <{ack_id}>\nReferences: <{first}> <{ack_id}>\n"),
        &format!(
            "Het probleem doet zich nu ook voor op campus Gent.\n{}",
            quoted(
                "Op 3 mrt. 2025 om 09:16 schreef Care Solutions Servicedesk <support@example.test>:",
                &ack.body
            )
        ),
    ))
    .await;
    desk.run_once().await;

    // 3. An agent's answer, simulated: the customer answers in the thread
    //    of their own first message (References only, no token).
    let third = "thread-third@delinde.example";
    desk.append(&mail(
        third,
        &koen,
        "Re: Foutmelding bij opslaan zorgplan",
        &format!("References: <{first}>\n"),
        "Ik heb de cache leeggemaakt zoals gevraagd, maar de fout blijft.\n",
    ))
    .await;
    desk.run_once().await;

    // 4. A new mail that names only the ticket token.
    let fourth = "thread-fourth@delinde.example";
    desk.append(&mail(
        fourth,
        &koen,
        "[CS-000001] bijkomende info",
        "",
        "In bijlage nog de naam van de bewoner waarbij het gisteren misging: kamer 12.\n",
    ))
    .await;
    desk.run_once().await;

    let tickets = desk.tickets().await;
    assert_eq!(tickets.len(), 1, "{tickets:#?}");
    let t = &tickets[0];
    assert_eq!(t.number, "CS-000001");
    assert_eq!(t.message_ids, [first, second, third, fourth]);
    assert_eq!(t.status, "new");
    assert_eq!(t.sender, KOEN);

    let sent = desk.sent();
    assert_eq!(
        sent.len(),
        1,
        "only the first mail is acknowledged: {sent:#?}"
    );
    assert!(sent[0].answers(first));

    let intake = desk.intake().await;
    assert_eq!(
        outcomes(&intake),
        ["ticket", "followup", "followup", "followup"]
    );
    let ids: Vec<&str> = intake.iter().map(|i| i.message_id.as_str()).collect();
    assert_eq!(ids, [first, second, third, fourth]);
    for r in &intake {
        assert_eq!(r.ticket.as_deref(), Some("CS-000001"), "{r:?}");
    }
    assert!(
        intake[1].detail.contains("thread"),
        "{:?}",
        intake[1].detail
    );
    assert!(
        intake[2].detail.contains("thread"),
        "{:?}",
        intake[2].detail
    );
    assert!(intake[3].detail.contains("token"), "{:?}", intake[3].detail);

    assert_eq!(desk.servers.count("INBOX").await, 0);
    assert_eq!(desk.servers.count("Processed").await, 4);
}

#[tokio::test]
async fn thread_stays_one_ticket_sqlite() {
    thread_stays_one_ticket(Backend::Sqlite).await;
}

#[tokio::test]
async fn thread_stays_one_ticket_postgres() {
    thread_stays_one_ticket(Backend::Postgres).await;
}

/// Another customer's ticket token is not a way into that ticket: a person
/// of the suspended customer gets a ticket of their own, an unregistered
/// sender an explanation.
#[tokio::test]
async fn foreign_ticket_token_does_not_thread() {
    let desk = Desk::start(Backend::Sqlite).await;
    let first = "token-owner@delinde.example";
    desk.append(&support::simple_incident(first)).await;
    desk.run_once().await;

    let sophie = "token-sophie@lestilleuls.example";
    desk.append(&mail(
        sophie,
        "Sophie Lambert <sophie.lambert@lestilleuls.example>",
        "Re: [CS-000001] Foutmelding bij opslaan zorgplan",
        "",
        "Bonjour,\n\nNous avons le même problème : impossible d'enregistrer un plan de soins,\n\
l'erreur ZP-2041 apparaît à chaque fois.\n\nCordialement,\nSophie Lambert\n",
    ))
    .await;
    let stranger = "token-stranger@carelogic.example";
    desk.append(&mail(
        stranger,
        "Peter Hughes <peter.hughes@carelogic.example>",
        "[CS-000001] Foutmelding bij opslaan zorgplan",
        "",
        "Hello, I have more information about this error.\n",
    ))
    .await;
    desk.run_once().await;

    let tickets = desk.tickets().await;
    assert_eq!(tickets.len(), 2, "{tickets:#?}");
    assert_eq!(tickets[0].message_ids, [first], "CS-000001 is untouched");
    let t = &tickets[1];
    assert_eq!(t.number, "CS-000002");
    assert_eq!(t.customer, "Résidence Les Tilleuls");
    assert_eq!(t.status, "on_hold");
    assert_eq!(t.message_ids, [sophie]);

    let sent = desk.sent();
    let r = only_reply_to(&sent, sophie);
    assert_eq!(r.notice.as_deref(), Some("suspended"));
    // Her own subject (with the other token) is quoted after ours: a reply
    // to this notice must find CS-000002 first.
    let first_token = r.subject.find("[CS-").map(|i| &r.subject[i..i + 11]);
    assert_eq!(first_token, Some("[CS-000002]"), "{:?}", r.subject);
    assert_eq!(r.rcpt, ["sophie.lambert@lestilleuls.example"]);

    let r = only_reply_to(&sent, stranger);
    assert_eq!(r.notice.as_deref(), Some("unregistered"));
    assert!(!r.subject.contains("[CS-000002]"), "{:?}", r.subject);

    assert_eq!(outcomes(&desk.intake_of(sophie).await), ["ticket"]);
    let rec = desk.intake_of(stranger).await;
    assert_eq!(outcomes(&rec), ["unregistered"]);
    assert_eq!(rec[0].ticket, None);
    assert_eq!(sent.len(), 3);
}

// ------------------------------------------------------- charge approval --

const CHARGE_CUSTOMERS: &str = "\
customer,contract_status,campuses
WZC De Linde,active,Gent;Aalst
";

const CHARGE_PERSONS: &str = "\
email,name,customer,campus,role,language
els.vermeulen@delinde.example,Els Vermeulen,WZC De Linde,,general,nl
claire.martin@delinde.example,Claire Martin,WZC De Linde,Aalst,campus,fr
james.wright@delinde.example,James Wright,WZC De Linde,Gent,campus,en
hans.becker@delinde.example,Hans Becker,WZC De Linde,,technical,de
";

/// An unmistakable request for training of new staff, per language:
/// (from, subject, body, quote header of a reply).
fn training_request(lang: &str) -> (&'static str, &'static str, &'static str, &'static str) {
    match lang {
        "nl" => (
            "Els Vermeulen <els.vermeulen@delinde.example>",
            "Opleiding medicatiemodule voor nieuwe verpleegkundigen",
            "Beste,\n\nIn maart starten er vijf nieuwe verpleegkundigen en twee zorgkundigen op campus\n\
Gent. Wij willen graag een opleiding aanvragen over de medicatiemodule en het\n\
elektronisch zorgdossier voor deze nieuwe medewerkers, bij voorkeur een halve dag op\n\
een dinsdag of donderdag.\n\nKunnen jullie laten weten welke mogelijkheden er zijn en wat de kostprijs is?\n\n\
Vriendelijke groet,\n\nEls Vermeulen\n",
            "Op 3 mrt. 2025 om 09:16 schreef Care Solutions Servicedesk <support@example.test>:",
        ),
        "fr" => (
            "Claire Martin <claire.martin@delinde.example>",
            "Demande de formation pour le nouveau personnel",
            "Bonjour,\n\nEn avril, quatre nouvelles infirmières commencent sur le campus d'Aalst.\n\
Nous souhaitons demander une formation au module de médication et au dossier de soins\n\
électronique pour ce nouveau personnel, de préférence une demi-journée un mardi.\n\n\
Pouvez-vous nous indiquer les possibilités et le coût de cette formation ?\n\n\
Cordialement,\nClaire Martin\n",
            "Le lun. 3 mars 2025 à 09:16, Care Solutions Servicedesk <support@example.test> a écrit :",
        ),
        "en" => (
            "James Wright <james.wright@delinde.example>",
            "Training request for new staff",
            "Hello,\n\nSix new nurses join campus Gent next month. We would like to request a training\n\
session on the medication module and the electronic care record for these new staff\n\
members, preferably half a day on a Tuesday or Thursday.\n\n\
Could you let us know the options and what the training would cost?\n\n\
Kind regards,\nJames Wright\n",
            "On Mon, 3 Mar 2025 at 09:16, Care Solutions Servicedesk <support@example.test> wrote:",
        ),
        "de" => (
            "Hans Becker <hans.becker@delinde.example>",
            "Schulung für neue Mitarbeiter",
            "Guten Tag,\n\nim April beginnen fünf neue Pflegekräfte bei uns. Wir möchten eine Schulung\n\
zum Medikationsmodul und zur elektronischen Pflegedokumentation für diese neuen\n\
Mitarbeiter beantragen, am liebsten einen halben Tag an einem Dienstag.\n\n\
Können Sie uns die Möglichkeiten und die Kosten dieser Schulung mitteilen?\n\n\
Mit freundlichen Grüßen\nHans Becker\n",
            "Am 03.03.2025 um 09:16 schrieb Care Solutions Servicedesk <support@example.test>:",
        ),
        other => panic!("no training request in {other}"),
    }
}

/// How a customer answers a chargeable notice, and what must become of it.
struct Answer {
    lang: &'static str,
    text: &'static str,
    /// `Some(status, approved)`, or `None` when the answer is unclear.
    verdict: Option<(&'static str, bool)>,
}

/// Training requests in four languages get the advance charge notice; the
/// customer's "yes" opens the ticket, "no" closes it, an unclear answer
/// leaves it for an agent. Answers get no reply.
#[tokio::test]
async fn charge_approval_in_each_language() {
    let servers = MailServers::start();
    let db = Db::sqlite(servers.dir());
    let store = db.store().await;
    support::import_registry(&store, CHARGE_CUSTOMERS, CHARGE_PERSONS).await;
    let config = support::config(&servers, &db);
    let run = || async {
        let s = daemon::run_once(&config)
            .await
            .unwrap_or_else(|e| panic!("run_once: {e:#}"));
        assert_eq!((s.replies_pending, s.replies_failed), (0, 0), "{s:?}");
        s
    };

    let answers = [
        Answer {
            lang: "nl",
            text: "Akkoord, ga maar verder.",
            verdict: Some(("new", true)),
        },
        Answer {
            lang: "fr",
            text: "D'accord, vous pouvez continuer.",
            verdict: Some(("new", true)),
        },
        Answer {
            lang: "en",
            text: "Agreed, please go ahead.",
            verdict: Some(("new", true)),
        },
        Answer {
            lang: "de",
            text: "Einverstanden, bitte fortfahren.",
            verdict: Some(("new", true)),
        },
        Answer {
            lang: "nl",
            text: "Niet akkoord.",
            verdict: Some(("closed", false)),
        },
        Answer {
            lang: "fr",
            text: "Nous ne sommes pas d'accord.",
            verdict: Some(("closed", false)),
        },
        Answer {
            lang: "en",
            text: "Not agreed, thanks.",
            verdict: Some(("closed", false)),
        },
        Answer {
            lang: "de",
            text: "Nicht einverstanden.",
            verdict: Some(("closed", false)),
        },
        Answer {
            lang: "nl",
            text: "Wat kost dat?",
            verdict: None,
        },
    ];

    // One training request per answer.
    let mut requests = Vec::new();
    for (i, a) in answers.iter().enumerate() {
        let (from, subject, body, _) = training_request(a.lang);
        let id = format!("training-{i}-{}@delinde.example", a.lang);
        servers
            .append("INBOX", &mail(&id, from, subject, "", body))
            .await;
        requests.push(id);
    }
    let s = run().await;
    assert_eq!((s.processed, s.replies_sent), (9, 9), "{s:?}");
    let sent = servers.sent();
    let mut acks = Vec::new();
    for (id, a) in requests.iter().zip(&answers) {
        let ack = only_reply_to(&sent, id);
        assert_eq!(
            ack.notice.as_deref(),
            Some("chargeable"),
            "{} training request: {}",
            a.lang,
            ack.subject
        );
        assert_eq!(ack.content_language.as_deref(), Some(a.lang), "{id}");
        acks.push(ack);
    }
    let tickets = store.tickets(&TicketFilter::default()).await.unwrap();
    assert_eq!(tickets.len(), 9);
    let number_of = |id: &str| -> String {
        tickets
            .iter()
            .find(|t| t.message_ids.iter().any(|m| m == id))
            .unwrap_or_else(|| panic!("no ticket for {id}"))
            .number
            .clone()
    };
    for (id, a) in requests.iter().zip(&answers) {
        let (t, _) = store.ticket(&number_of(id)).await.unwrap();
        assert_eq!(t.status, "awaiting_approval", "{} request", a.lang);
        assert_eq!(
            t.chargeable_reason.map(|r| r.as_str()),
            Some("training"),
            "{id}"
        );
        assert_eq!(t.charge_approved, None);
    }

    // The answers, each quoting the notice it answers.
    let mut answer_ids = Vec::new();
    for (i, (a, ack)) in answers.iter().zip(&acks).enumerate() {
        let (from, _, _, quote_header) = training_request(a.lang);
        let ack_id = id_of(ack);
        let id = format!("answer-{i}-{}@delinde.example", a.lang);
        servers
            .append(
                "INBOX",
                &mail(
                    &id,
                    from,
                    &format!("Re: {}", ack.subject),
                    &format!(
                        "In-Reply-To: <{ack_id}>\nReferences: <{}> <{ack_id}>\n",
                        requests[i]
                    ),
                    &format!("{}\n{}", a.text, quoted(quote_header, &ack.body)),
                ),
            )
            .await;
        answer_ids.push(id);
    }
    let s = run().await;
    assert_eq!((s.processed, s.replies_sent), (9, 0), "{s:?}");
    assert_eq!(servers.sent().len(), 9, "an answer got a reply");

    for ((request, answer_id), a) in requests.iter().zip(&answer_ids).zip(&answers) {
        let number = number_of(request);
        let (t, _) = store.ticket(&number).await.unwrap();
        assert_eq!(t.message_ids, [request.as_str(), answer_id.as_str()]);
        let what = format!("{} answer {:?} on {number}", a.lang, a.text);
        match a.verdict {
            Some((status, approved)) => {
                assert_eq!(t.status, status, "{what}");
                assert_eq!(t.charge_approved, Some(approved), "{what}");
                assert!(
                    t.charge_decision.as_deref().is_some_and(|d| !d.is_empty()),
                    "{what}: charge_decision {:?}",
                    t.charge_decision
                );
            }
            None => {
                assert_eq!(t.status, "awaiting_approval", "{what}");
                assert_eq!(t.charge_approved, None, "{what}");
                assert_eq!(t.charge_decision, None, "{what}");
                assert!(t.attention.is_some(), "{what}: no attention");
            }
        }
        let rec: Vec<IntakeView> = store
            .intake()
            .await
            .unwrap()
            .into_iter()
            .filter(|r| &r.message_id == answer_id)
            .collect();
        assert_eq!(outcomes(&rec), ["followup"], "{what}");
        assert_eq!(rec[0].ticket.as_deref(), Some(number.as_str()), "{what}");
    }
}

/// A chargeable notice's Message-ID and token are seen by everyone the mail
/// was copied or forwarded to. A stranger, another customer's reference
/// person and the rightful sender each answer "akkoord" in its thread: the
/// first two are kept on the ticket as outsiders and decide nothing (no
/// approval, no reply); only the last one approves, and the ticket records
/// who approved with which message. Run on both backends.
async fn only_the_customers_own_people_approve(backend: Backend) {
    let desk = Desk::start(backend).await;
    let (from, subject, body, quote_header) = training_request("nl");
    let request = "charge-request@delinde.example";
    desk.append(&mail(request, from, subject, "", body)).await;
    desk.run_once().await;
    let ack = only_reply_to(&desk.sent(), request);
    assert_eq!(ack.notice.as_deref(), Some("chargeable"));
    let number = desk.tickets().await[0].number.clone();
    let ack_id = id_of(&ack);
    let answer = |id: &str, from: &str| {
        mail(
            id,
            from,
            &format!("Re: {}", ack.subject),
            &format!("In-Reply-To: <{ack_id}>\nReferences: <{request}> <{ack_id}>\n"),
            &format!(
                "Akkoord, ga maar verder.\n{}",
                quoted(quote_header, &ack.body)
            ),
        )
    };

    for (id, outsider) in [
        (
            "stranger-yes@elsewhere.example",
            "Piet Vreemd <piet@elsewhere.example>",
        ),
        (
            "other-customer-yes@lestilleuls.example",
            "Sophie Lambert <sophie.lambert@lestilleuls.example>",
        ),
    ] {
        desk.append(&answer(id, outsider)).await;
        let s = desk.run_once().await;
        assert_eq!((s.processed, s.replies_sent), (1, 0), "{id}: {s:?}");
        let (t, thread) = desk.store.ticket(&number).await.unwrap();
        assert_eq!(t.status, "awaiting_approval", "{id} changed the status");
        assert_eq!(t.charge_approved, None, "{id} decided the charge");
        assert_eq!(t.charge_decided_by, None, "{id}");
        assert!(
            t.attention
                .as_deref()
                .is_some_and(|a| a.contains("not a registered person")),
            "{id}: {:?}",
            t.attention
        );
        let kept = thread
            .iter()
            .find(|m| m.message_id == id)
            .expect("kept on the ticket");
        assert!(kept.outsider, "{id} not marked as an outsider");
        let rec = desk.intake_of(id).await;
        assert_eq!(outcomes(&rec), ["followup"], "{id}");
        assert!(rec[0].detail.contains("outsider"), "{}", rec[0].detail);
    }
    assert_eq!(desk.sent().len(), 1, "an outsider got a reply");

    let rightful = "els-yes@delinde.example";
    desk.append(&answer(rightful, from)).await;
    let s = desk.run_once().await;
    assert_eq!((s.processed, s.replies_sent), (1, 0), "{s:?}");
    let (t, thread) = desk.store.ticket(&number).await.unwrap();
    assert_eq!((t.status.as_str(), t.charge_approved), ("new", Some(true)));
    assert_eq!(
        t.charge_decided_by.as_deref(),
        Some("els.vermeulen@delinde.example")
    );
    assert_eq!(t.charge_decided_message.as_deref(), Some(rightful));
    assert!(
        !thread
            .iter()
            .find(|m| m.message_id == rightful)
            .unwrap()
            .outsider
    );
    assert_eq!(desk.sent().len(), 1, "the approval got a reply");
}

#[tokio::test]
async fn only_the_customers_own_people_approve_sqlite() {
    only_the_customers_own_people_approve(Backend::Sqlite).await;
}

#[tokio::test]
async fn only_the_customers_own_people_approve_postgres() {
    only_the_customers_own_people_approve(Backend::Postgres).await;
}

// -------------------------------------------------------------- reopening --

/// A customer who answers on a resolved (or recently closed) ticket opens it
/// again, without a new ticket and without a new acknowledgement.
#[tokio::test]
async fn resolved_ticket_reopens() {
    let desk = Desk::start(Backend::Sqlite).await;
    let koen = format!("Koen De Witte <{KOEN}>");
    let first = "reopen-first@delinde.example";
    desk.append(&support::simple_incident(first)).await;
    desk.run_once().await;
    let ack = only_reply_to(&desk.sent(), first);
    let ack_id = id_of(&ack);

    for (round, status) in ["resolved", "closed"].into_iter().enumerate() {
        let changed = desk
            .store
            .set_ticket(
                "CS-000001",
                &TicketChange {
                    status: Some(status.parse().expect("a status")),
                    ..TicketChange::default()
                },
            )
            .await
            .expect("set_ticket");
        assert_eq!(changed.len(), 1, "{changed:?}");
        assert_eq!(desk.ticket("CS-000001").await.status, status);

        let id = format!("reopen-{round}@delinde.example");
        desk.append(&mail(
            &id,
            &koen,
            &format!("Re: {}", ack.subject),
            &format!("In-Reply-To: <{ack_id}>\nReferences: <{first}> <{ack_id}>\n"),
            "De fout is terug: vanochtend kon opnieuw geen enkel zorgplan worden opgeslagen.\n",
        ))
        .await;
        let s = desk.run_once().await;
        assert_eq!((s.processed, s.replies_sent), (1, 0), "{s:?}");
        let t = desk.ticket("CS-000001").await;
        assert_eq!(t.status, "open", "after a reply on a {status} ticket");
        assert_eq!(outcomes(&desk.intake_of(&id).await), ["followup"]);
    }
    assert_eq!(desk.tickets().await.len(), 1);
    assert_eq!(desk.sent().len(), 1);
}

// ------------------------------------------------------ limits and loops --

/// An unregistered address gets at most `no_ticket_replies_per_day` (10)
/// explanations; every message is still recorded.
#[tokio::test]
async fn unregistered_sender_gets_ten_explanations_a_day() {
    let desk = Desk::start(Backend::Sqlite).await;
    let from = "peter.hughes@carelogic.example";
    for i in 0..25 {
        desk.append(&mail(
            &format!("unreg-{i}@carelogic.example"),
            &format!("Peter Hughes <{from}>"),
            &format!("Question {i} about the export interface"),
            "",
            "Hello,\n\nHow does the export interface for resident data work?\n\nPeter\n",
        ))
        .await;
    }
    let s = desk.run_once().await;
    assert_eq!(s.processed, 25, "{s:?}");
    let sent = desk.sent();
    let to_him: Vec<&Sent> = sent.iter().filter(|r| r.rcpt == [from]).collect();
    assert_eq!(to_him.len(), 10, "{sent:#?}");
    assert_eq!(sent.len(), 10);
    assert!(to_him
        .iter()
        .all(|r| r.notice.as_deref() == Some("unregistered")));
    let intake = desk.intake().await;
    assert_eq!(intake.len(), 25);
    assert!(
        intake.iter().all(|r| r.outcome == "unregistered"),
        "{intake:#?}"
    );
    assert!(intake.iter().all(|r| r.ticket.is_none()));
    assert!(desk.tickets().await.is_empty());
}

/// A spammer sprays forged senders: explanations stop at the hourly cap for
/// everyone together (each further intake record says why), and none of
/// them repeats the sender's subject or display name.
#[tokio::test]
async fn a_flood_of_forged_senders_gets_a_capped_number_of_plain_explanations() {
    let desk = Desk::start_with(
        Backend::Sqlite,
        "[limits]\nno_ticket_replies_per_hour = 3\n",
    )
    .await;
    const PITCH: &str = "Cheap pills at pills.example";
    for i in 0..6 {
        desk.append(&mail(
            &format!("flood-{i}@spam.example"),
            &format!("\"Visit pills.example now\" <victim{i}@elsewhere.example>"),
            PITCH,
            "",
            "Hello,\n\nHow does the export interface for resident data work?\n",
        ))
        .await;
    }
    let s = desk.run_once().await;
    assert_eq!(s.processed, 6, "{s:?}");
    let sent = desk.sent();
    assert_eq!(sent.len(), 3, "{sent:#?}");
    for r in &sent {
        assert_eq!(r.notice.as_deref(), Some("unregistered"));
        let raw = std::fs::read_to_string(desk.servers.smtp_out().join(format!("{}.eml", r.n)))
            .expect("captured reply");
        assert!(
            !raw.contains("pills.example") && !r.subject.contains("pills"),
            "an explanation repeats the sender's words:\n{raw}"
        );
    }
    let paused: Vec<IntakeView> = desk
        .intake()
        .await
        .into_iter()
        .filter(|r| r.detail.contains("hourly limit"))
        .collect();
    assert_eq!(paused.len(), 3, "{:#?}", desk.intake().await);
    assert!(paused.iter().all(|r| r.outcome == "unregistered"));
}

/// The same limit holds when the sender's program writes the address in
/// capitals: the address is the same mailbox.
#[tokio::test]
async fn explanation_limit_ignores_address_case() {
    let desk = Desk::start(Backend::Sqlite).await;
    for i in 0..12 {
        desk.append(&mail(
            &format!("unreg-case-{i}@carelogic.example"),
            "Peter Hughes <Peter.Hughes@CareLogic.example>",
            &format!("Question {i} about the export interface"),
            "",
            "Hello,\n\nHow does the export interface for resident data work?\n\nPeter\n",
        ))
        .await;
    }
    let s = desk.run_once().await;
    assert_eq!(s.processed, 12, "{s:?}");
    let sent = desk.sent();
    assert_eq!(
        sent.len(),
        10,
        "more than 10 explanations to one address: {:?}",
        sent.iter().map(|s| &s.rcpt).collect::<Vec<_>>()
    );
}

/// A message delivered twice is one ticket with one acknowledgement.
#[tokio::test]
async fn redelivered_message_is_one_ticket() {
    let desk = Desk::start(Backend::Sqlite).await;
    let id = "twice@delinde.example";
    let raw = support::simple_incident(id);
    desk.append(&raw).await;
    desk.append(&raw).await;
    let s = desk.run_once().await;
    assert_eq!((s.processed, s.replies_sent), (2, 1), "{s:?}");
    let tickets = desk.tickets().await;
    assert_eq!(tickets.len(), 1);
    assert_eq!(tickets[0].message_ids, [id]);
    assert_eq!(desk.sent().len(), 1);
    let rec = desk.intake_of(id).await;
    assert_eq!(outcomes(&rec), ["ticket", "duplicate"]);
    assert_eq!(rec[1].ticket.as_deref(), Some("CS-000001"));
    assert_eq!(desk.servers.count("Processed").await, 2);
}

/// How the robot of the ping-pong test answers.
#[derive(Debug, Clone, Copy)]
enum Robot {
    /// "Automatisch antwoord: …", "Ik ben afwezig tot maandag.", no headers.
    OutOfOffice,
    /// "Re: …", "Received your message": no words, no headers.
    Echo,
}

/// A robot answers every reply it gets; the desk must stop answering.
async fn ping_pong(robot: Robot, registered: bool) {
    let desk = Desk::start(Backend::Sqlite).await;
    let address = if registered {
        "an.peeters@delinde.example"
    } else {
        "planning@zorgpartner.example"
    };
    desk.append(&mail(
        "pingpong-0@robot.example",
        &format!("Planning <{address}>"),
        "Vraag over de weekplanning",
        "",
        "Dag,\n\nHoe kan ik in de module Planning een dienst kopiëren naar de volgende week?\n\nGroeten\n",
    ))
    .await;

    let mut seen = BTreeSet::new();
    let mut ended = false;
    for round in 0..6 {
        desk.run_once().await;
        let new: Vec<Sent> = desk
            .sent()
            .into_iter()
            .filter(|s| seen.insert(s.n))
            .filter(|s| s.rcpt.iter().any(|r| r.eq_ignore_ascii_case(address)))
            .collect();
        if new.is_empty() {
            ended = true;
            break;
        }
        for (i, reply) in new.iter().enumerate() {
            let (subject, body) = match robot {
                Robot::OutOfOffice => (
                    format!("Automatisch antwoord: {}", reply.subject),
                    "Ik ben afwezig tot maandag.\n",
                ),
                Robot::Echo => (format!("Re: {}", reply.subject), "Received your message\n"),
            };
            let reply_id = id_of(reply);
            desk.append(&mail(
                &format!("pingpong-{round}-{i}@robot.example"),
                &format!("Planning <{address}>"),
                &subject,
                &format!("In-Reply-To: <{reply_id}>\nReferences: <{reply_id}>\n"),
                body,
            ))
            .await;
        }
    }
    let to_robot: Vec<Sent> = desk
        .sent()
        .into_iter()
        .filter(|s| s.rcpt.iter().any(|r| r.eq_ignore_ascii_case(address)))
        .collect();
    assert!(
        to_robot.len() <= 1,
        "{robot:?} (registered: {registered}) got {} replies: {:#?}",
        to_robot.len(),
        to_robot
            .iter()
            .map(|s| (&s.subject, &s.notice))
            .collect::<Vec<_>>()
    );
    assert!(
        ended,
        "{robot:?} (registered: {registered}): still ping-ponging after 6 rounds"
    );
    assert!(desk.tickets().await.len() <= 1);
}

#[tokio::test]
async fn ping_pong_out_of_office_registered() {
    ping_pong(Robot::OutOfOffice, true).await;
}

#[tokio::test]
async fn ping_pong_out_of_office_unregistered() {
    ping_pong(Robot::OutOfOffice, false).await;
}

#[tokio::test]
async fn ping_pong_echo_registered() {
    ping_pong(Robot::Echo, true).await;
}

#[tokio::test]
async fn ping_pong_echo_unregistered() {
    ping_pong(Robot::Echo, false).await;
}

/// Two robots against the running daemon (IDLE): a registered address that
/// echoes every reply, and an unregistered out-of-office. Each gets exactly
/// one reply; their answers are recorded and get none.
#[tokio::test]
async fn robots_against_the_running_daemon() {
    let desk = Desk::start(Backend::Sqlite).await;
    let echo = "an.peeters@delinde.example";
    let away = "planning@zorgpartner.example";
    let config = desk.config.clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        daemon::run(&config, async {
            let _ = stop_rx.await;
        })
        .await
    });

    for (i, address) in [echo, away].into_iter().enumerate() {
        desk.append(&mail(
            &format!("robot-start-{i}@robot.example"),
            &format!("Planning <{address}>"),
            "Vraag over de weekplanning",
            "",
            "Dag,\n\nHoe kan ik in de module Planning een dienst kopiëren naar de volgende week?\n\nGroeten\n",
        ))
        .await;
    }

    // The robots answer whatever reaches them, until both first mails and
    // both answers are recorded and nothing waits to be sent.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut seen = BTreeSet::new();
    let mut answers = 0;
    loop {
        for reply in desk.sent().into_iter().filter(|s| seen.insert(s.n)) {
            let reply_id = id_of(&reply);
            let (from, subject, body) = if reply.rcpt == [echo] {
                (
                    echo,
                    format!("Re: {}", reply.subject),
                    "Received your message\n",
                )
            } else if reply.rcpt == [away] {
                (
                    away,
                    format!("Automatisch antwoord: {}", reply.subject),
                    "Ik ben afwezig tot maandag.\n",
                )
            } else {
                panic!("a reply to {:?}", reply.rcpt);
            };
            desk.append(&mail(
                &format!("robot-answer-{answers}@robot.example"),
                &format!("Planning <{from}>"),
                &subject,
                &format!("In-Reply-To: <{reply_id}>\nReferences: <{reply_id}>\n"),
                body,
            ))
            .await;
            answers += 1;
        }
        let recorded = desk.intake().await.len();
        let pending = desk.store.pending_replies().await.expect("outbox");
        if recorded >= 2 + answers && answers >= 2 && pending == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the daemon did not settle: {recorded} recorded, {answers} answers, {pending} pending"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    stop_tx.send(()).expect("the daemon is gone");
    tokio::time::timeout(std::time::Duration::from_secs(20), task)
        .await
        .expect("the daemon did not stop")
        .expect("the daemon task panicked")
        .unwrap_or_else(|e| panic!("daemon::run: {e:#}"));

    let outbox = desk.store.outbox().await.expect("outbox");
    let notices: Vec<(&str, &str)> = outbox
        .iter()
        .map(|o| (o.recipient.as_str(), o.notice.as_str()))
        .collect();
    assert_eq!(outbox.len(), 2, "{notices:?}");
    assert!(notices.contains(&(echo, "received")), "{notices:?}");
    assert!(notices.contains(&(away, "unregistered")), "{notices:?}");
    assert_eq!(desk.sent().len(), 2);
    let intake = desk.intake().await;
    let mut got: Vec<&str> = outcomes(&intake);
    got.sort_unstable();
    assert_eq!(got, ["followup", "suppressed", "ticket", "unregistered"]);
    assert_eq!(desk.tickets().await.len(), 1);
}

/// More than 20 tickets from one address within 10 minutes: the tickets are
/// made, the acknowledgements stop, agents are told. Another customer who
/// writes 8 separate mails meanwhile gets all 8 acknowledgements.
#[tokio::test]
async fn loop_breaker_pauses_acknowledgements() {
    let desk = Desk::start(Backend::Sqlite).await;
    let koen = format!("Koen De Witte <{KOEN}>");
    let an = "an.peeters@delinde.example";
    let mut koen_ids = Vec::new();
    let mut an_ids = Vec::new();
    for i in 0..22 {
        let id = format!("loop-{i}@delinde.example");
        desk.append(&mail(
            &id,
            &koen,
            &format!("Foutmelding ZP-{} bij opslaan zorgplan", 2041 + i),
            "",
            &format!(
                "Dag servicedesk,\n\nBij het opslaan van het zorgplan van bewoner {i} krijgen we de foutmelding\n\
\"Fout ZP-{}: Het zorgplan kon niet worden opgeslagen.\"\n\nKoen\n",
                2041 + i
            ),
        ))
        .await;
        koen_ids.push(id);
        if i % 3 == 0 && an_ids.len() < 8 {
            let id = format!("busy-{i}@delinde.example");
            desk.append(&mail(
                &id,
                &format!("An Peeters <{an}>"),
                &format!("Vraag {} over de medicatielijst", an_ids.len() + 1),
                "",
                "Dag,\n\nHoe druk ik de medicatielijst af voor één afdeling?\n\nAn\n",
            ))
            .await;
            an_ids.push(id);
        }
    }
    assert_eq!(an_ids.len(), 8);
    let s = desk.run_once().await;
    assert_eq!(s.processed, 30, "{s:?}");

    let sent = desk.sent();
    let tickets = desk.tickets().await;
    let koens: Vec<&TicketView> = tickets.iter().filter(|t| t.sender == KOEN).collect();
    assert_eq!(koens.len(), 22);
    let acked: Vec<&Sent> = sent.iter().filter(|s| s.rcpt == [KOEN]).collect();
    assert_eq!(acked.len(), 20, "acknowledgements to {KOEN}");
    for (i, id) in koen_ids.iter().enumerate() {
        let t = koens
            .iter()
            .find(|t| t.message_ids == [id.as_str()])
            .unwrap_or_else(|| panic!("no ticket for {id}"));
        let replies = sent.iter().filter(|s| s.answers(id)).count();
        if i < 20 {
            assert_eq!(replies, 1, "{id}");
            assert_eq!(t.attention, None, "{id}");
        } else {
            assert_eq!(replies, 0, "{id}: acknowledged despite the loop breaker");
            assert!(t.attention.is_some(), "{id}: no attention");
        }
    }
    let flags = desk.store.address_flags().await.unwrap();
    assert!(
        flags.iter().any(|f| f.0 == KOEN && f.1 == "loop_breaker"),
        "{flags:?}"
    );
    assert!(!flags.iter().any(|f| f.0 == an), "{flags:?}");

    for id in &an_ids {
        assert_eq!(only_reply_to(&sent, id).notice.as_deref(), Some("received"));
    }
    assert_eq!(tickets.iter().filter(|t| t.sender == an).count(), 8);
}

// ---------------------------------------------------------------- bounces --

/// A bounce of an acknowledgement gets no answer; it lands on the ticket and
/// the unreachable address is flagged.
#[tokio::test]
async fn bounce_of_an_acknowledgement() {
    let desk = Desk::start(Backend::Sqlite).await;
    let first = "bounced-first@delinde.example";
    desk.append(&support::simple_incident(first)).await;
    desk.run_once().await;
    let ack = only_reply_to(&desk.sent(), first);
    let ack_id = id_of(&ack);

    let dsn_id = "dsn-7f3a@mx.delinde.example";
    let dsn = format!(
        "Return-Path: <>\n\
Message-ID: <{dsn_id}>\n\
Date: Mon, 03 Mar 2025 09:17:00 +0100\n\
From: Mail Delivery System <MAILER-DAEMON@mx.delinde.example>\n\
To: support@example.test\n\
Subject: Undelivered Mail Returned to Sender\n\
MIME-Version: 1.0\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"dsn_b\"\n\
\n\
--dsn_b\n\
Content-Type: text/plain; charset=us-ascii\n\
\n\
Your message to {KOEN} could not be delivered: mailbox unavailable.\n\
\n\
--dsn_b\n\
Content-Type: message/delivery-status\n\
\n\
Reporting-MTA: dns; mx.delinde.example\n\
\n\
Final-Recipient: rfc822; {KOEN}\n\
Action: failed\n\
Status: 5.2.1\n\
\n\
--dsn_b\n\
Content-Type: text/rfc822-headers\n\
\n\
From: Care Solutions Servicedesk <support@example.test>\n\
To: Koen De Witte <{KOEN}>\n\
Subject: {subject}\n\
Message-ID: <{ack_id}>\n\
Auto-Submitted: auto-replied\n\
\n\
--dsn_b--\n",
        subject = ack.subject
    );
    desk.append(dsn.as_bytes()).await;
    let s = desk.run_once().await;
    assert_eq!((s.processed, s.replies_sent), (1, 0), "{s:?}");
    assert_eq!(desk.sent().len(), 1, "the bounce was answered");

    let rec = desk.intake_of(dsn_id).await;
    assert_eq!(outcomes(&rec), ["suppressed"]);
    assert_eq!(rec[0].ticket.as_deref(), Some("CS-000001"), "{rec:?}");
    let (t, thread) = desk.store.ticket("CS-000001").await.unwrap();
    assert!(
        thread
            .iter()
            .any(|m| m.direction == "bounce" && m.message_id == dsn_id),
        "{thread:#?}"
    );
    assert_eq!(t.message_ids, [first], "a bounce is not a customer message");
    let flags = desk.store.address_flags().await.unwrap();
    assert!(
        flags.iter().any(|f| f.0 == KOEN && f.1 == "bounced"),
        "{flags:?}"
    );
    assert_eq!(desk.tickets().await.len(), 1);
}

/// A read receipt (MDN, `multipart/report; report-type=disposition-notification`)
/// is automated mail, but not a delivery failure: the reader's address is
/// reachable and must not be flagged as bounced, nor the receipt filed as a
/// bounce on the ticket.
#[tokio::test]
async fn read_receipt_is_not_a_bounce() {
    let desk = Desk::start(Backend::Sqlite).await;
    let first = "mdn-first@delinde.example";
    desk.append(&support::simple_incident(first)).await;
    desk.run_once().await;
    let ack = only_reply_to(&desk.sent(), first);
    let ack_id = id_of(&ack);

    let mdn_id = "mdn-1@delinde.example";
    let mdn = format!(
        "Message-ID: <{mdn_id}>\n\
Date: Mon, 03 Mar 2025 09:20:00 +0100\n\
From: Koen De Witte <{KOEN}>\n\
To: support@example.test\n\
Subject: Gelezen: {subject}\n\
MIME-Version: 1.0\n\
Content-Type: multipart/report; report-type=disposition-notification; boundary=\"mdn_b\"\n\
\n\
--mdn_b\n\
Content-Type: text/plain; charset=utf-8\n\
\n\
Uw bericht is gelezen op 3 maart 2025 om 09:20.\n\
--mdn_b\n\
Content-Type: message/disposition-notification\n\
\n\
Reporting-UA: Microsoft Outlook 16.0\n\
Final-Recipient: rfc822;{KOEN}\n\
Original-Message-ID: <{ack_id}>\n\
Disposition: manual-action/MDN-sent-manually; displayed\n\
--mdn_b\n\
Content-Type: text/rfc822-headers\n\
\n\
From: Care Solutions Servicedesk <support@example.test>\n\
To: Koen De Witte <{KOEN}>\n\
Subject: {subject}\n\
Message-ID: <{ack_id}>\n\
\n\
--mdn_b--\n",
        subject = ack.subject
    );
    desk.append(mdn.as_bytes()).await;
    let s = desk.run_once().await;
    assert_eq!((s.processed, s.replies_sent), (1, 0), "{s:?}");
    assert_eq!(desk.sent().len(), 1, "the read receipt was answered");
    assert_eq!(outcomes(&desk.intake_of(mdn_id).await), ["suppressed"]);
    let flags = desk.store.address_flags().await.unwrap();
    assert!(
        !flags.iter().any(|f| f.0 == KOEN && f.1 == "bounced"),
        "a read receipt flagged {KOEN} as bounced: {flags:?}"
    );
    let (_, thread) = desk.store.ticket("CS-000001").await.unwrap();
    assert!(
        !thread.iter().any(|m| m.direction == "bounce"),
        "a read receipt was filed as a bounce: {thread:#?}"
    );
}

// ------------------------------------------------------------- oversized --

/// A ~100 KB message: a text part and a base64 attachment.
fn big_mail(message_id: &str, from: &str, subject: &str) -> Vec<u8> {
    let mut attachment = String::new();
    let line: String = (0..76)
        .map(|i| {
            char::from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[i % 64])
        })
        .collect();
    while attachment.len() < 100 * 1024 {
        attachment.push_str(&line);
        attachment.push('\n');
    }
    format!(
        "Message-ID: <{message_id}>\n\
Date: Mon, 03 Mar 2025 09:15:00 +0100\n\
From: {from}\n\
To: {TO}\n\
Subject: {subject}\n\
MIME-Version: 1.0\n\
Content-Type: multipart/mixed; boundary=\"big_b\"\n\
\n\
--big_b\n\
Content-Type: text/plain; charset=utf-8\n\
\n\
Dag servicedesk,\n\nIn bijlage het logbestand van de foutmelding bij het opslaan van een zorgplan.\n\n\
--big_b\n\
Content-Type: application/octet-stream; name=\"zorgplan.log\"\n\
Content-Disposition: attachment; filename=\"zorgplan.log\"\n\
Content-Transfer-Encoding: base64\n\
\n\
{attachment}\
--big_b--\n"
    )
    .into_bytes()
}

/// Over `max_message_bytes` only the header is read: a registered sender
/// still gets a ticket (flagged for an agent) and the usual acknowledgement,
/// an unregistered one a size notice. Smaller mail in the same run is
/// handled as always.
#[tokio::test]
async fn oversized_messages() {
    let desk = Desk::start_with(Backend::Sqlite, "[limits]\nmax_message_bytes = 20000\n").await;
    let big_reg = "big-registered@delinde.example";
    let big_unreg = "big-unregistered@carelogic.example";
    let small_reg = "small-registered@delinde.example";
    let small_unreg = "small-unregistered@carelogic.example";
    let raw = big_mail(
        big_reg,
        &format!("Koen De Witte <{KOEN}>"),
        "Foutmelding bij opslaan zorgplan, logbestand in bijlage",
    );
    assert!(raw.len() > 100 * 1024);
    desk.append(&raw).await;
    desk.append(&support::simple_incident(small_reg)).await;
    desk.append(&big_mail(
        big_unreg,
        "Peter Hughes <peter.hughes@carelogic.example>",
        "Log file of the export error",
    ))
    .await;
    desk.append(&mail(
        small_unreg,
        "Peter Hughes <peter.hughes@carelogic.example>",
        "Question about the export interface",
        "",
        "Hello,\n\nHow does the export interface for resident data work?\n\nPeter\n",
    ))
    .await;
    let s = desk.run_once().await;
    assert_eq!(
        (s.processed, s.quarantined, s.replies_sent),
        (4, 0, 4),
        "{s:?}"
    );

    let sent = desk.sent();
    let tickets = desk.tickets().await;
    assert_eq!(tickets.len(), 2, "{tickets:#?}");
    let big = tickets
        .iter()
        .find(|t| t.message_ids == [big_reg])
        .expect("a ticket for the big mail");
    let attention = big.attention.as_deref().unwrap_or_default();
    assert!(attention.contains("too large"), "attention {attention:?}");
    let ack = only_reply_to(&sent, big_reg);
    assert_eq!(ack.notice.as_deref(), Some("received"));
    assert!(ack.subject.contains(&format!("[{}]", big.number)));
    assert_eq!(ack.rcpt, [KOEN]);

    let small = tickets
        .iter()
        .find(|t| t.message_ids == [small_reg])
        .expect("a ticket for the small mail");
    assert_eq!(small.attention, None);
    assert_eq!(small.category, "incident");
    assert_eq!(
        only_reply_to(&sent, small_reg).notice.as_deref(),
        Some("received")
    );

    assert_eq!(
        only_reply_to(&sent, big_unreg).notice.as_deref(),
        Some("too_large")
    );
    assert_eq!(
        only_reply_to(&sent, small_unreg).notice.as_deref(),
        Some("unregistered")
    );
    assert_eq!(sent.len(), 4);
    assert_eq!(desk.servers.count("INBOX").await, 0);
    assert_eq!(desk.servers.count("Processed").await, 4);
    assert_eq!(desk.servers.count("Quarantine").await, 0);
}

// ---------------------------------------------------------- forged sender --

const AUTH_CONFIG: &str =
    "[security]\nrequire_aligned_auth = true\nauthserv_id = \"mx.example.test\"\n";

/// With `require_aligned_auth`, a registered From is trusted only when our
/// own server's Authentication-Results vouches for it.
#[tokio::test]
async fn forged_registered_sender_is_not_trusted() {
    let desk = Desk::start_with(Backend::Sqlite, AUTH_CONFIG).await;
    let koen = format!("Koen De Witte <{KOEN}>");
    let body =
        "Dag,\n\nDe module Zorgplanning geeft foutmelding ZP-2041 bij het opslaan.\n\nKoen\n";
    let forged = "forged-1@delinde.example";
    desk.append(&mail(forged, &koen, "Foutmelding zorgplan", "", body))
        .await;
    let foreign = "forged-2@delinde.example";
    desk.append(&mail(
        foreign,
        &koen,
        "Foutmelding zorgplan",
        "Authentication-Results: mx.attacker.example; dmarc=pass header.from=delinde.example\n",
        body,
    ))
    .await;
    let genuine = "genuine-1@delinde.example";
    desk.append(&mail(
        genuine,
        &koen,
        "Foutmelding zorgplan",
        "Authentication-Results: mx.example.test; dmarc=pass header.from=delinde.example\n",
        body,
    ))
    .await;
    let s = desk.run_once().await;
    assert_eq!(s.processed, 3, "{s:?}");

    for id in [forged, foreign] {
        let rec = desk.intake_of(id).await;
        assert_eq!(outcomes(&rec), ["unregistered"], "{id}");
        assert_eq!(rec[0].ticket, None, "{id}");
    }
    let tickets = desk.tickets().await;
    assert_eq!(tickets.len(), 1, "{tickets:#?}");
    assert_eq!(tickets[0].message_ids, [genuine]);
    let sent = desk.sent();
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert!(sent[0].answers(genuine));
    assert_eq!(sent[0].notice.as_deref(), Some("received"));
}

/// The intake record says why a registered address got no ticket.
#[tokio::test]
async fn forged_sender_intake_names_authentication() {
    let desk = Desk::start_with(Backend::Sqlite, AUTH_CONFIG).await;
    let forged = "forged-detail@delinde.example";
    desk.append(&mail(
        forged,
        &format!("Koen De Witte <{KOEN}>"),
        "Foutmelding zorgplan",
        "",
        "Dag,\n\nDe module Zorgplanning geeft foutmelding ZP-2041 bij het opslaan.\n\nKoen\n",
    ))
    .await;
    desk.run_once().await;
    let rec = desk.intake_of(forged).await;
    assert_eq!(outcomes(&rec), ["unregistered"]);
    let detail = rec[0].detail.to_lowercase();
    assert!(detail.contains("authenticat"), "detail {:?}", rec[0].detail);
    assert!(!detail.contains("limit"), "detail {:?}", rec[0].detail);
}
