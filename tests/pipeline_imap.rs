//! The whole pipeline against real servers: mail APPENDed to a Dovecot
//! mailbox, `run_once` / `run` in-process, replies captured by the SMTP sink,
//! tickets and intake read back from SQLite and PostgreSQL.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use servicedesk::daemon;
use servicedesk::store::{IntakeView, Store, TicketFilter, TicketView};
use support::{Backend, Db, MailServers, Options, Sent, Tls};

/// How long the daemon test waits for something to happen before it gives up.
const PATIENCE: Duration = Duration::from_secs(20);

/// What must become of one inbound message.
#[derive(Debug, Clone)]
enum Expect {
    Ticket {
        /// The registered address the reply must go to.
        rcpt: &'static str,
        notice: &'static str,
        status: &'static str,
        language: &'static str,
        category: Option<&'static str>,
        reason: Option<&'static str>,
        customer: &'static str,
    },
    Unregistered {
        rcpt: &'static str,
        language: &'static str,
    },
    Suppressed,
    /// Readable, but no `From`/`Sender` address: recorded, answered to no one.
    NoSender,
    Quarantined,
}

struct Case {
    name: &'static str,
    message_id: &'static str,
    raw: String,
    expect: Expect,
}

fn mail(message_id: &str, headers: &str, body: &str) -> String {
    format!(
        "Message-ID: <{message_id}>\nDate: Mon, 03 Mar 2025 09:15:00 +0100\n{headers}\
MIME-Version: 1.0\nContent-Type: text/plain; charset=\"utf-8\"\nContent-Transfer-Encoding: 8bit\n\n{body}"
    )
}

/// The mailbox of the end-to-end test: every kind of mail the desk gets.
fn cases() -> Vec<Case> {
    let to = "To: Care Solutions Servicedesk <support@example.test>\n";
    vec![
        Case {
            name: "registered incident (nl)",
            message_id: "incident-zorgplan@delinde.example",
            raw: String::from_utf8(support::simple_incident("incident-zorgplan@delinde.example"))
                .unwrap(),
            expect: Expect::Ticket {
                rcpt: "koen.dewitte@delinde.example",
                notice: "received",
                status: "new",
                language: "nl",
                category: Some("incident"),
                reason: None,
                customer: "WZC De Linde",
            },
        },
        Case {
            name: "registered question (en)",
            message_id: "222828C2-F74F-7F211F137FC5@delinde.example",
            raw: mail(
                "222828C2-F74F-7F211F137FC5@delinde.example",
                &format!("From: James Wright <james.wright@delinde.example>\n{to}Subject: How do I schedule a recurring care task?\nX-Mailer: iPhone Mail (21D61)\n"),
                "Hi,\n\nHow do I set up a care task that repeats every Monday and Thursday, for example a\n\
weekly weight check? At the moment I create each occurrence by hand. I looked in the\n\
care plan screen but could not find a repeat option.\n\nThanks in advance,\nJames\n\n\
James Wright\nHead Nurse, Campus Gent\nWZC De Linde\n",
            ),
            expect: Expect::Ticket {
                rcpt: "james.wright@delinde.example",
                notice: "received",
                status: "new",
                language: "en",
                category: Some("question"),
                reason: None,
                customer: "WZC De Linde",
            },
        },
        Case {
            name: "registered training request (nl, chargeable)",
            message_id: "AM9PR02MBB4D6A972A74EB9787E1C@eurprd02.prod.outlook.example",
            raw: mail(
                "AM9PR02MBB4D6A972A74EB9787E1C@eurprd02.prod.outlook.example",
                &format!("From: Els Vermeulen <els.vermeulen@delinde.example>\n{to}Subject: Opleiding medicatiemodule voor nieuwe verpleegkundigen\nX-Mailer: Microsoft Outlook 16.0\n"),
                "Beste,\n\nIn maart starten er vijf nieuwe verpleegkundigen en twee zorgkundigen op campus\n\
Gent. Wij willen graag een opleiding aanvragen over de medicatiemodule en het\n\
elektronisch zorgdossier voor deze nieuwe medewerkers, bij voorkeur een halve dag op\n\
een dinsdag of donderdag.\n\nKunnen jullie laten weten welke mogelijkheden er zijn en wat de kostprijs is?\n\n\
Vriendelijke groet,\n\nEls Vermeulen\nAlgemeen directeur\nWZC De Linde vzw\n",
            ),
            expect: Expect::Ticket {
                rcpt: "els.vermeulen@delinde.example",
                notice: "chargeable",
                status: "awaiting_approval",
                language: "nl",
                category: None,
                reason: Some("training"),
                customer: "WZC De Linde",
            },
        },
        Case {
            name: "registered person of a suspended customer (fr)",
            message_id: "c81f2a.7d1e@lestilleuls.example",
            raw: mail(
                "c81f2a.7d1e@lestilleuls.example",
                &format!("From: Sophie Lambert <sophie.lambert@lestilleuls.example>\n{to}Subject: Erreur lors de l'enregistrement d'une prescription\n"),
                "Bonjour,\n\nDepuis ce matin, le module de prescription affiche une erreur lorsque nous\n\
enregistrons une nouvelle prescription : « Erreur PR-301 : enregistrement impossible ».\n\
Les infirmières ne peuvent plus valider les médicaments du soir.\n\n\
Pouvez-vous nous aider rapidement ?\n\nCordialement,\nSophie Lambert\nDirectrice\nRésidence Les Tilleuls\n",
            ),
            expect: Expect::Ticket {
                rcpt: "sophie.lambert@lestilleuls.example",
                notice: "suspended",
                status: "on_hold",
                language: "fr",
                category: None,
                reason: None,
                customer: "Résidence Les Tilleuls",
            },
        },
        Case {
            name: "registered person, mixed-case From, forged Reply-To (nl)",
            message_id: "5b7d0c19e2@mail.delinde.example",
            raw: mail(
                "5b7d0c19e2@mail.delinde.example",
                &format!("From: \"Claes, Tom\" <Tom.Claes@DeLinde.EXAMPLE>\nReply-To: Helpdesk <collect@phish.example>\n{to}Subject: Planning module start niet meer op\n"),
                "Hallo,\n\nSinds de update van vanochtend start de module Planning niet meer op. We krijgen\n\
een foutmelding \"Toegang geweigerd\" bij elke gebruiker op campus Gent.\n\
Kunnen jullie dit dringend bekijken?\n\nGroeten,\nTom Claes\nICT WZC De Linde\n",
            ),
            expect: Expect::Ticket {
                rcpt: "tom.claes@delinde.example",
                notice: "received",
                status: "new",
                language: "nl",
                category: None,
                reason: None,
                customer: "WZC De Linde",
            },
        },
        Case {
            name: "unregistered sender (fr)",
            message_id: "AM9PR02MB99CCE8A83DF4CDB25018@eurprd02.prod.outlook.example",
            raw: mail(
                "AM9PR02MB99CCE8A83DF4CDB25018@eurprd02.prod.outlook.example",
                &format!("From: Dr Antoine Leroy <a.leroy@lestilleuls.example>\n{to}Subject: Le module de prescription ne fonctionne pas\n"),
                "Bonjour,\n\nJe suis médecin coordinateur à la résidence. Depuis ce matin, le module de\n\
prescription ne fonctionne pas : impossible d'enregistrer une nouvelle prescription,\n\
le bouton « Valider » reste grisé.\n\nPouvez-vous régler cela rapidement ?\n\nDr A. Leroy\n",
            ),
            expect: Expect::Unregistered {
                rcpt: "a.leroy@lestilleuls.example",
                language: "fr",
            },
        },
        Case {
            name: "unregistered sender (en)",
            message_id: "f00d1e55-consult@carelogic.example",
            raw: mail(
                "f00d1e55-consult@carelogic.example",
                &format!("From: Peter Hughes <peter.hughes@carelogic.example>\n{to}Subject: Question about the export interface\n"),
                "Hello,\n\nI am an external consultant working for one of your customers. Could you tell me\n\
how the export interface for resident data works and which file formats it supports?\n\
I would like to connect it to our reporting tool.\n\nKind regards,\nPeter Hughes\nCareLogic Consulting\n",
            ),
            expect: Expect::Unregistered {
                rcpt: "peter.hughes@carelogic.example",
                language: "en",
            },
        },
        Case {
            name: "out-of-office of a registered person",
            message_id: "ooo-an-peeters@delinde.example",
            raw: mail(
                "ooo-an-peeters@delinde.example",
                &format!("From: An Peeters <an.peeters@delinde.example>\n{to}Subject: Automatisch antwoord: Afwezig\nAuto-Submitted: auto-replied\n"),
                "Ik ben afwezig tot en met 14 maart. Voor dringende zaken kunt u contact opnemen\n\
met Els Vermeulen.\n",
            ),
            expect: Expect::Suppressed,
        },
        Case {
            name: "bounce",
            message_id: "bounce-7f3a21c9e0@mx.delinde.example",
            raw: "Return-Path: <>\n\
Message-ID: <bounce-7f3a21c9e0@mx.delinde.example>\n\
Date: Mon, 03 Mar 2025 09:16:00 +0100\n\
From: Mail Delivery System <MAILER-DAEMON@mx.delinde.example>\n\
To: support@example.test\n\
Subject: Undelivered Mail Returned to Sender\n\
MIME-Version: 1.0\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"b_ndr_7f3a\"\n\
\n\
--b_ndr_7f3a\n\
Content-Type: text/plain; charset=\"us-ascii\"\n\
\n\
Your message to p.vandamme@delinde.example couldn't be delivered.\n\
\n\
--b_ndr_7f3a\n\
Content-Type: message/delivery-status\n\
\n\
Reporting-MTA: dns; mx.delinde.example\n\
\n\
Final-Recipient: rfc822; p.vandamme@delinde.example\n\
Action: failed\n\
Status: 5.1.1\n\
\n\
--b_ndr_7f3a--\n"
                .to_string(),
            expect: Expect::Suppressed,
        },
        Case {
            name: "mailing list",
            message_id: "list-2025-03@lists.zorgnet.example",
            raw: mail(
                "list-2025-03@lists.zorgnet.example",
                &format!("From: Zorgnet Nieuws <nieuws@lists.zorgnet.example>\n{to}Subject: Nieuwsbrief maart\nList-Id: Zorgnet nieuws <nieuws.lists.zorgnet.example>\nList-Unsubscribe: <mailto:leave@lists.zorgnet.example>\n"),
                "Beste lezer,\n\nIn deze nieuwsbrief: de nieuwe richtlijnen voor medicatieveiligheid.\n",
            ),
            expect: Expect::Suppressed,
        },
        Case {
            name: "bulk mail",
            message_id: "promo-4481@mailing.vendor.example",
            raw: mail(
                "promo-4481@mailing.vendor.example",
                &format!("From: Vendor Promotions <promo@mailing.vendor.example>\n{to}Subject: Our spring offers\nPrecedence: bulk\n"),
                "Dear customer,\n\nDiscover our spring offers for nursing homes.\n",
            ),
            expect: Expect::Suppressed,
        },
        Case {
            name: "noreply sender",
            message_id: "notif-99812@portal.example",
            raw: mail(
                "notif-99812@portal.example",
                &format!("From: Zorgportaal <noreply@portal.example>\n{to}Subject: Uw wachtwoord verloopt binnenkort\n"),
                "Uw wachtwoord voor het zorgportaal verloopt over 5 dagen.\n",
            ),
            expect: Expect::Suppressed,
        },
        Case {
            name: "our own address",
            message_id: "own-loop-1@example.test",
            raw: mail(
                "own-loop-1@example.test",
                &format!("From: Care Solutions Servicedesk <support@example.test>\n{to}Subject: [CS-000999] Ontvangstbevestiging\n"),
                "Wij hebben uw melding goed ontvangen.\n",
            ),
            expect: Expect::Suppressed,
        },
        Case {
            name: "X-Loop of the support address",
            message_id: "xloop-3@delinde.example",
            raw: mail(
                "xloop-3@delinde.example",
                &format!("From: Tom Claes <tom.claes@delinde.example>\n{to}Subject: Re: [CS-000998] Ontvangstbevestiging\nX-Loop: support@example.test\n"),
                "Doorgestuurd bericht.\n",
            ),
            expect: Expect::Suppressed,
        },
        Case {
            name: "no From header (and a Reply-To that must not be used)",
            message_id: "no-from-1@nowhere.example",
            raw: "Message-ID: <no-from-1@nowhere.example>\n\
Date: Mon, 03 Mar 2025 09:20:00 +0100\n\
To: support@example.test\n\
Reply-To: koen.dewitte@delinde.example\n\
Subject: zonder afzender\n\
\n\
Dit bericht heeft geen afzender.\n"
                .to_string(),
            expect: Expect::NoSender,
        },
        Case {
            name: "unreadable: not a mail at all",
            message_id: "",
            raw: "this is not a mail message at all\n".to_string(),
            expect: Expect::Quarantined,
        },
    ]
}

async fn run_once(config: &servicedesk::config::Config) -> daemon::RunSummary {
    daemon::run_once(config)
        .await
        .unwrap_or_else(|e| panic!("run_once: {e:#}"))
}

async fn tickets(store: &Store) -> Vec<TicketView> {
    store
        .tickets(&TicketFilter::default())
        .await
        .expect("tickets")
}

async fn intake(store: &Store) -> Vec<IntakeView> {
    store.intake().await.expect("intake")
}

fn replies_to<'a>(sent: &'a [Sent], message_id: &str) -> Vec<&'a Sent> {
    sent.iter().filter(|s| s.answers(message_id)).collect()
}

fn intake_of<'a>(intake: &'a [IntakeView], message_id: &str) -> Vec<&'a IntakeView> {
    intake
        .iter()
        .filter(|i| i.message_id == message_id)
        .collect()
}

/// The "done when", on one backend.
async fn pipeline_end_to_end(backend: Backend) {
    let servers = MailServers::start();
    let db = backend.db(servers.dir()).await;
    let store = db.store().await;
    support::import_standard_registry(&store).await;
    let config = support::config(&servers, &db);

    let cases = cases();
    for c in &cases {
        servers.append("INBOX", c.raw.as_bytes()).await;
    }
    assert_eq!(servers.count("INBOX").await as usize, cases.len());

    let summary = run_once(&config).await;
    assert_eq!(summary.quarantined, 1, "{summary:?}");
    assert_eq!(summary.processed, cases.len() - 1, "{summary:?}");
    assert_eq!(summary.replies_pending, 0, "{summary:?}");
    assert_eq!(summary.replies_failed, 0, "{summary:?}");

    let sent = servers.sent();
    let tickets = tickets(&store).await;
    let intake = intake(&store).await;

    let mut ticket_count = 0;
    let mut reply_count = 0;
    for c in &cases {
        let what = c.name;
        let on_tickets: Vec<&TicketView> = tickets
            .iter()
            .filter(|t| t.message_ids.iter().any(|m| m == c.message_id))
            .collect();
        let replies = replies_to(&sent, c.message_id);
        let records = intake_of(&intake, c.message_id);
        match &c.expect {
            Expect::Ticket {
                rcpt,
                notice,
                status,
                language,
                category,
                reason,
                customer,
            } => {
                ticket_count += 1;
                reply_count += 1;
                assert_eq!(on_tickets.len(), 1, "{what}: on exactly one ticket");
                let t = on_tickets[0];
                assert_eq!(t.message_ids, vec![c.message_id], "{what}");
                assert_eq!(t.status, *status, "{what}: status");
                assert_eq!(t.customer, *customer, "{what}: customer");
                assert_eq!(t.sender, *rcpt, "{what}: ticket sender");
                assert_eq!(t.language, *language, "{what}: ticket language");
                if let Some(category) = category {
                    assert_eq!(t.category, *category, "{what}: category");
                }
                if *notice != "suspended" {
                    assert_eq!(
                        t.chargeable_reason.map(|r| r.as_str()),
                        *reason,
                        "{what}: reason"
                    );
                    assert_eq!(t.chargeable, reason.is_some(), "{what}: chargeable");
                }
                assert_eq!(t.charge_approved, None, "{what}");

                assert_eq!(records.len(), 1, "{what}: one intake record");
                assert_eq!(records[0].outcome, "ticket", "{what}");
                assert_eq!(records[0].ticket.as_deref(), Some(t.number.as_str()));

                assert_eq!(replies.len(), 1, "{what}: exactly one reply: {replies:#?}");
                let r = replies[0];
                assert_eq!(r.notice.as_deref(), Some(*notice), "{what}: notice");
                assert!(
                    r.subject.contains(&format!("[{}]", t.number)),
                    "{what}: ticket token in {:?}",
                    r.subject
                );
                assert_eq!(r.auto_submitted.as_deref(), Some("auto-replied"), "{what}");
                assert_eq!(r.content_language.as_deref(), Some(*language), "{what}");
                let refs = r.references.as_deref().unwrap_or_default();
                assert!(
                    refs.contains(&format!("<{}>", c.message_id)),
                    "{what}: References {refs:?}"
                );
                assert_eq!(r.rcpt, vec![rcpt.to_string()], "{what}: envelope recipient");
                assert!(r.to.eq_ignore_ascii_case(rcpt), "{what}: To {:?}", r.to);
                assert_eq!(r.mail_from, "support@example.test", "{what}");
            }
            Expect::Unregistered { rcpt, language } => {
                reply_count += 1;
                assert!(on_tickets.is_empty(), "{what}: no ticket");
                assert_eq!(records.len(), 1, "{what}: one intake record");
                assert_eq!(records[0].outcome, "unregistered", "{what}");
                assert_eq!(records[0].ticket, None, "{what}");
                assert_eq!(replies.len(), 1, "{what}: exactly one reply: {replies:#?}");
                let r = replies[0];
                assert_eq!(r.notice.as_deref(), Some("unregistered"), "{what}");
                assert_eq!(r.rcpt, vec![rcpt.to_string()], "{what}: envelope recipient");
                assert_eq!(r.auto_submitted.as_deref(), Some("auto-replied"), "{what}");
                assert_eq!(r.content_language.as_deref(), Some(*language), "{what}");
                assert!(!r.subject.contains("[CS-"), "{what}: {:?}", r.subject);
            }
            Expect::Suppressed => {
                assert!(on_tickets.is_empty(), "{what}: no ticket");
                assert!(replies.is_empty(), "{what}: no reply: {replies:#?}");
                assert_eq!(records.len(), 1, "{what}: one intake record");
                assert_eq!(records[0].outcome, "suppressed", "{what}: {records:?}");
            }
            Expect::NoSender => {
                assert!(on_tickets.is_empty(), "{what}: no ticket");
                assert!(replies.is_empty(), "{what}: no reply: {replies:#?}");
                assert_eq!(records.len(), 1, "{what}: one intake record");
                assert_eq!(records[0].outcome, "unregistered", "{what}");
                assert!(
                    records[0].detail.contains("no usable sender address"),
                    "{what}: {}",
                    records[0].detail
                );
            }
            Expect::Quarantined => {
                assert!(replies.is_empty(), "{what}: no reply");
            }
        }
    }
    let quarantined: Vec<&IntakeView> = intake
        .iter()
        .filter(|i| i.outcome == "quarantined")
        .collect();
    assert_eq!(quarantined.len(), 1, "{quarantined:?}");
    assert!(!quarantined[0].detail.is_empty());
    assert_eq!(intake.len(), cases.len(), "one intake record per message");

    assert_eq!(tickets.len(), ticket_count);
    let numbers: BTreeSet<String> = tickets.iter().map(|t| t.number.clone()).collect();
    let expected: BTreeSet<String> = (1..=ticket_count).map(|n| format!("CS-{n:06}")).collect();
    assert_eq!(numbers, expected);
    assert_eq!(sent.len(), reply_count, "{sent:#?}");
    assert!(
        sent.iter()
            .all(|s| s.rcpt.iter().all(|r| !r.contains("phish"))),
        "a reply went to the forged Reply-To"
    );
    assert!(
        sent.iter().all(|s| s.rcpt != ["support@example.test"]),
        "a reply went to the desk itself"
    );

    assert_eq!(servers.count("INBOX").await, 0);
    assert_eq!(
        servers.count("Processed").await as usize,
        cases.len() - 1,
        "Processed"
    );
    assert_eq!(servers.count("Quarantine").await, 1, "Quarantine");

    // A second run finds nothing to do and changes nothing.
    let again = run_once(&config).await;
    assert_eq!(again.processed + again.quarantined, 0, "{again:?}");
    assert_eq!(again.replies_sent, 0, "{again:?}");
    assert_eq!(servers.sent().len(), sent.len());
    let after = tickets_summary(&store).await;
    assert_eq!(after, summarize(&tickets));
    assert_eq!(self::intake(&store).await.len(), intake.len());
    assert_eq!(servers.count("Processed").await as usize, cases.len() - 1);
    assert_eq!(servers.count("Quarantine").await, 1);
}

fn summarize(tickets: &[TicketView]) -> Vec<(String, String, Vec<String>)> {
    tickets
        .iter()
        .map(|t| {
            (
                t.number.clone(),
                t.status.to_string(),
                t.message_ids.clone(),
            )
        })
        .collect()
}

async fn tickets_summary(store: &Store) -> Vec<(String, String, Vec<String>)> {
    summarize(&tickets(store).await)
}

#[tokio::test]
async fn end_to_end_sqlite() {
    pipeline_end_to_end(Backend::Sqlite).await;
}

#[tokio::test]
async fn end_to_end_postgres() {
    pipeline_end_to_end(Backend::Postgres).await;
}

/// A copy of a processed message (re-delivered, or in a mailbox whose
/// UIDVALIDITY changed) is recognised by its Message-ID: no ticket, no reply.
async fn redelivery_is_a_duplicate(backend: Backend) {
    let servers = MailServers::start();
    let db = backend.db(servers.dir()).await;
    let store = db.store().await;
    support::import_standard_registry(&store).await;
    servers.create("Support").await;
    let config = support::config_with(
        &servers,
        &db,
        &Options {
            mailbox: "Support".into(),
            ..Options::default()
        },
    );
    let id = "redelivered-1@delinde.example";
    let raw = support::simple_incident(id);

    servers.append("Support", &raw).await;
    run_once(&config).await;
    let first = tickets(&store).await;
    assert_eq!(first.len(), 1);
    let number = first[0].number.clone();
    assert_eq!(replies_to(&servers.sent(), id).len(), 1);

    // The same message delivered again into the same mailbox.
    servers.append("Support", &raw).await;
    run_once(&config).await;

    // The mailbox recreated (new UIDVALIDITY, UIDs start over) and the message in it again.
    let validity = servers.uid_validity("Support").await;
    servers.recreate("Support").await;
    assert_ne!(servers.uid_validity("Support").await, validity);
    servers.append("Support", &raw).await;
    let summary = run_once(&config).await;
    assert_eq!(summary.processed, 1, "{summary:?}");
    assert_eq!(summary.replies_sent, 0, "{summary:?}");

    assert_eq!(tickets_summary(&store).await, summarize(&first));
    assert_eq!(servers.sent().len(), 1, "no second reply");
    let records = intake(&store).await;
    let records = intake_of(&records, id);
    let outcomes: Vec<&str> = records.iter().map(|r| r.outcome.as_str()).collect();
    assert_eq!(outcomes, ["ticket", "duplicate", "duplicate"]);
    for r in &records[1..] {
        assert_eq!(r.ticket.as_deref(), Some(number.as_str()), "{r:?}");
    }
    assert_eq!(servers.count("Support").await, 0);
    assert_eq!(servers.count("Processed").await, 3);
}

#[tokio::test]
async fn redelivery_is_a_duplicate_sqlite() {
    redelivery_is_a_duplicate(Backend::Sqlite).await;
}

#[tokio::test]
async fn redelivery_is_a_duplicate_postgres() {
    redelivery_is_a_duplicate(Backend::Postgres).await;
}

/// STARTTLS on the plain IMAP port and for SMTP, both trusting the test CA.
#[tokio::test]
async fn starttls_for_imap_and_smtp() {
    tls_round_trip(Tls::Starttls, Tls::Starttls).await;
}

/// SMTP with implicit TLS (port 465 style), trusting the test CA.
#[tokio::test]
async fn implicit_tls_for_smtp() {
    tls_round_trip(Tls::Implicit, Tls::Implicit).await;
}

async fn tls_round_trip(imap_tls: Tls, smtp_tls: Tls) {
    let servers = MailServers::start();
    let db = Db::sqlite(servers.dir());
    let store = db.store().await;
    support::import_standard_registry(&store).await;
    let config = support::config_with(
        &servers,
        &db,
        &Options {
            imap_tls,
            smtp_tls,
            ..Options::default()
        },
    );
    let id = "tls-1@delinde.example";
    servers.append("INBOX", &support::simple_incident(id)).await;
    let summary = run_once(&config).await;
    assert_eq!(summary.processed, 1, "{summary:?}");
    assert_eq!(summary.replies_sent, 1, "{summary:?}");
    let sent = servers.sent();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].answers(id));
    assert!(sent[0].tls, "the reply was not sent over TLS");
    assert_eq!(tickets(&store).await.len(), 1);
    assert_eq!(servers.count("INBOX").await, 0);
}

/// A refused login names the account and the login, never the password.
#[tokio::test]
async fn wrong_imap_password_is_a_clear_error() {
    let servers = MailServers::start();
    let db = Db::sqlite(servers.dir());
    let password = "Wr0ng-Secret-4711";
    let config = support::config_with(
        &servers,
        &db,
        &Options {
            imap_password: password.into(),
            ..Options::default()
        },
    );
    servers
        .append("INBOX", &support::simple_incident("pw-1@delinde.example"))
        .await;
    let err = daemon::run_once(&config)
        .await
        .expect_err("a wrong password must fail the run");
    let text = format!("{err:#}");
    let debug = format!("{err:?}");
    assert!(text.to_lowercase().contains("login"), "{text}");
    assert!(text.contains(support::SUPPORT_USER), "{text}");
    assert!(!text.contains(password), "password in the error: {text}");
    assert!(!debug.contains(password), "password in the error: {debug}");
    // Nothing was processed and nothing was sent. (The mailbox is not
    // looked at again: Dovecot delays logins from an address that just
    // failed one.)
    assert!(intake(&db.store().await).await.is_empty());
    assert!(servers.sent().is_empty());
}

/// The daemon picks up mail that arrives while it waits (IDLE), and stops
/// when asked.
#[tokio::test]
async fn daemon_answers_new_mail_and_shuts_down() {
    let servers = MailServers::start();
    let db = Db::sqlite(servers.dir());
    let store = db.store().await;
    support::import_standard_registry(&store).await;
    let config = support::config(&servers, &db);

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        daemon::run(&config, async {
            let _ = stop_rx.await;
        })
        .await
    });

    let first = "daemon-1@delinde.example";
    servers
        .append("INBOX", &support::simple_incident(first))
        .await;
    let sent = servers.wait_sent(1, PATIENCE).await;
    assert_eq!(
        sent.len(),
        1,
        "no reply to the first mail within {PATIENCE:?}"
    );
    assert!(sent[0].answers(first));

    // Arrives after the first was handled: the daemon must notice it (IDLE)
    // long before its next regular look (25 minutes away).
    let second = "daemon-2@delinde.example";
    servers
        .append("INBOX", &support::simple_incident(second))
        .await;
    let sent = servers.wait_sent(2, PATIENCE).await;
    assert_eq!(
        sent.len(),
        2,
        "no reply to the second mail within {PATIENCE:?}"
    );
    assert!(sent[1].answers(second));

    stop_tx.send(()).expect("the daemon is gone");
    let result = tokio::time::timeout(PATIENCE, task)
        .await
        .expect("the daemon did not stop after shutdown")
        .expect("the daemon task panicked");
    result.unwrap_or_else(|e| panic!("daemon::run: {e:#}"));

    assert_eq!(tickets(&store).await.len(), 2);
    assert_eq!(servers.count("INBOX").await, 0);
    assert_eq!(servers.count("Processed").await, 2);
    assert_eq!(servers.sent().len(), 2);
}

/// A server without MOVE, UIDPLUS and IDLE: messages are copied, flagged and
/// expunged, and the daemon polls instead of idling.
#[tokio::test]
async fn fallbacks_without_move_and_idle() {
    let servers = MailServers::start_with_capability(Some("IMAP4rev1 LITERAL+ ID ENABLE"));
    let db = Db::sqlite(servers.dir());
    let store = db.store().await;
    support::import_standard_registry(&store).await;
    let config = support::config_with(
        &servers,
        &db,
        &Options {
            poll_interval_secs: 1,
            ..Options::default()
        },
    );

    let first = "fallback-1@delinde.example";
    servers
        .append("INBOX", &support::simple_incident(first))
        .await;
    servers
        .append("INBOX", b"who wrote this? not a mail at all\r\n")
        .await;
    let summary = run_once(&config).await;
    assert_eq!(
        (summary.processed, summary.quarantined),
        (1, 1),
        "{summary:?}"
    );
    assert_eq!(servers.count("INBOX").await, 0);
    assert_eq!(servers.count("Processed").await, 1);
    assert_eq!(servers.count("Quarantine").await, 1);
    assert_eq!(replies_to(&servers.sent(), first).len(), 1);

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        daemon::run(&config, async {
            let _ = stop_rx.await;
        })
        .await
    });
    let second = "fallback-2@delinde.example";
    servers
        .append("INBOX", &support::simple_incident(second))
        .await;
    let sent = servers.wait_sent(2, PATIENCE).await;
    assert_eq!(sent.len(), 2, "no reply within {PATIENCE:?} while polling");
    assert!(sent[1].answers(second));
    stop_tx.send(()).expect("the daemon is gone");
    tokio::time::timeout(PATIENCE, task)
        .await
        .expect("the daemon did not stop after shutdown")
        .expect("the daemon task panicked")
        .unwrap_or_else(|e| panic!("daemon::run: {e:#}"));
    assert_eq!(servers.count("INBOX").await, 0);
    assert_eq!(servers.count("Processed").await, 2);
}

/// A server that answers 451 keeps the reply queued; it goes out once the
/// server accepts again, exactly once.
#[tokio::test]
async fn outbox_retries_after_tempfail() {
    let servers = MailServers::start();
    let db = Db::sqlite(servers.dir());
    let store = db.store().await;
    support::import_standard_registry(&store).await;
    let impatient = support::config_with(
        &servers,
        &db,
        &Options {
            once_wait_secs: 0,
            ..Options::default()
        },
    );
    let id = "tempfail-1@delinde.example";
    servers.append("INBOX", &support::simple_incident(id)).await;

    servers.set_smtp_mode(Some("tempfail"));
    let summary = run_once(&impatient).await;
    assert_eq!(summary.processed, 1, "{summary:?}");
    assert_eq!(summary.replies_sent, 0, "{summary:?}");
    assert_eq!(summary.replies_pending, 1, "{summary:?}");
    let outbox = store.outbox().await.expect("outbox");
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0].status, "pending");
    assert!(outbox[0].attempts >= 1, "{:?}", outbox[0]);
    assert!(
        outbox[0]
            .last_error
            .as_deref()
            .is_some_and(|e| !e.is_empty()),
        "{:?}",
        outbox[0]
    );
    assert!(servers.sent().is_empty());
    assert_eq!(tickets(&store).await.len(), 1, "the ticket exists anyway");

    servers.set_smtp_mode(None);
    let config = support::config(&servers, &db);
    let summary = run_once(&config).await;
    assert_eq!(summary.processed, 0, "{summary:?}");
    assert_eq!(summary.replies_sent, 1, "{summary:?}");
    assert_eq!(summary.replies_pending, 0, "{summary:?}");
    let sent = servers.sent();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].answers(id));
    let outbox = store.outbox().await.expect("outbox");
    assert_eq!(outbox[0].status, "sent");

    // Nothing is sent twice.
    run_once(&config).await;
    assert_eq!(servers.sent().len(), 1);
}

/// A server that answers 554 gets the reply marked failed, not retried.
#[tokio::test]
async fn outbox_marks_permfail_failed() {
    let servers = MailServers::start();
    let db = Db::sqlite(servers.dir());
    let store = db.store().await;
    support::import_standard_registry(&store).await;
    let config = support::config(&servers, &db);
    servers
        .append(
            "INBOX",
            &support::simple_incident("permfail-1@delinde.example"),
        )
        .await;

    servers.set_smtp_mode(Some("permfail"));
    let summary = run_once(&config).await;
    assert_eq!(summary.replies_failed, 1, "{summary:?}");
    assert_eq!(summary.replies_pending, 0, "{summary:?}");
    let outbox = store.outbox().await.expect("outbox");
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0].status, "failed");
    assert!(outbox[0].last_error.is_some(), "{:?}", outbox[0]);
    assert!(servers.sent().is_empty());

    // Failed stays failed (an agent requeues it with `outbox retry`).
    servers.set_smtp_mode(None);
    run_once(&config).await;
    assert!(servers.sent().is_empty());
    assert_eq!(store.outbox().await.expect("outbox")[0].status, "failed");
}
