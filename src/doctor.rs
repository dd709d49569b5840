//! `servicedesk doctor`: before the first `run`, whether it will work, one
//! line per part with ✔ or ✘ and, for a ✘, the fix. It reads and connects
//! but changes nothing: no migration, no folder created, no mail sent.
//!
//! Checked: the configuration, the database (reachable, migrations applied
//! or pending, a SQLite file writable), each IMAP mailbox (TCP, TLS and the
//! certificate chain, login, the mailbox and its folders, IDLE/MOVE/UIDPLUS),
//! SMTP (TCP, TLS, EHLO, AUTH), the registry's coverage, every reply
//! template in every language, and the sorting rules and model.

use std::path::Path;

use crate::config::{Config, ImapConfig};
use crate::domain::{Language, Notice};
use crate::source::imap::{ImapError, ImapSource};
use crate::store::Store;

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub ok: bool,
    /// What was checked, e.g. `imap support@example.be on mail.example.be:993/INBOX`.
    pub part: String,
    /// What was found; for a failure, what went wrong and the fix.
    pub detail: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mark = if self.ok { '✔' } else { '✘' };
        write!(f, "{mark} {}: {}", self.part, self.detail)
    }
}

fn ok(part: impl Into<String>, detail: impl Into<String>) -> Finding {
    Finding {
        ok: true,
        part: part.into(),
        detail: detail.into(),
    }
}

fn failed(part: impl Into<String>, what: impl std::fmt::Display, fix: &str) -> Finding {
    Finding {
        ok: false,
        part: part.into(),
        detail: format!("{what} — fix: {fix}"),
    }
}

/// Checks everything the configuration at `path` names.
pub async fn examine(path: &Path) -> Vec<Finding> {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            return vec![failed(
                "config",
                e,
                "correct the file as the message says (servicedesk.toml lists every key)",
            )]
        }
    };
    let mut findings = vec![ok("config", path.display().to_string())];
    let store = database(&config, &mut findings).await;
    let tokens = match &store {
        Some(store) => crate::oauth::Tokens::new(store.clone()),
        None => crate::oauth::Tokens::without_store(),
    };
    if let Err(e) = tokens.prepare(&config) {
        findings.push(failed(
            "oauth2",
            format!("{e:#}"),
            "check the ca_file of [imap.oauth2] and [smtp.oauth2]",
        ));
    }
    for section in crate::oauth::sections(&config) {
        findings.push(oauth(&tokens, &section).await);
    }
    for imap in &config.imap {
        findings.push(mailbox(imap, &tokens).await);
    }
    if let Some(md) = &config.maildir {
        findings.push(if md.path.join("new").is_dir() {
            ok("maildir", md.path.display().to_string())
        } else {
            failed(
                "maildir",
                format!("{} has no new/ folder", md.path.display()),
                "point [maildir] path at a Maildir (with new/, cur/, tmp/)",
            )
        });
    }
    if config.imap.is_empty() && config.maildir.is_none() {
        findings.push(failed(
            "sources",
            "no [imap] and no [maildir]: `run` would read nothing",
            "configure [imap] (or [maildir]); `ingest` works without either",
        ));
    }
    findings.push(smtp(&config, &tokens).await);
    if let Some(store) = &store {
        findings.push(registry(store).await);
        findings.extend(sla_tiers(store, &config).await);
    }
    findings.push(templates(&config));
    findings.push(sorting(&config));
    if let (Some(store), None) = (&store, &config.triage.model_file) {
        findings.push(desk_model(store).await);
    }
    if let (Some(listen), Some(store)) = (config.web.listen, &store) {
        findings.push(workspace(listen, store).await);
    }
    findings
}

/// Which of the desk's own models sorts (`servicedesk model`), if any.
async fn desk_model(store: &Store) -> Finding {
    match crate::models::in_use(store).await {
        Ok((None, _)) => ok(
            "model in use",
            "the built-in one (no model of this desk's own in use)",
        ),
        Ok((Some(id), Some(m))) => ok("model in use", format!("model {id}, {}", m.describe())),
        Ok((Some(id), None)) => ok("model in use", format!("model {id}")),
        Err(e) => failed(
            "model in use",
            format!("{e:#}"),
            "`servicedesk model use builtin` (or another model from `servicedesk model list`)",
        ),
    }
}

/// The database: reachable, writable, migrations applied or pending.
/// Returns the store when the registry can be read from it.
async fn database(config: &Config, findings: &mut Vec<Finding>) -> Option<Store> {
    let part = format!("database {}", config.database.shown_url());
    let url = config.database.connect_url();
    if let Some(file) = crate::store::sqlite::file_of(url) {
        if !file.exists() {
            let dir = file.parent().filter(|d| !d.as_os_str().is_empty());
            let creatable = dir.is_none_or(|d| writable_dir(d) || !d.exists());
            findings.push(if creatable {
                ok(
                    part,
                    "not created yet; `run` (or any command) creates it with its schema",
                )
            } else {
                failed(
                    part,
                    format!("{} cannot be created", file.display()),
                    "make its folder writable for the service user",
                )
            });
            return None;
        }
        if std::fs::OpenOptions::new().append(true).open(file).is_err() {
            findings.push(failed(
                part,
                format!("{} is not writable", file.display()),
                "give the service user write access to the file and its folder",
            ));
            return None;
        }
    }
    let store = match Store::connect_to_inspect(url).await {
        Ok(s) => s,
        Err(e) => {
            findings.push(failed(
                part,
                e,
                "check [database] url and password, and that the server runs",
            ));
            return None;
        }
    };
    match store.pending_migrations().await {
        Ok(pending) if pending.is_empty() => {
            findings.push(ok(part, "reachable, schema up to date"));
            Some(store)
        }
        Ok(pending) => {
            findings.push(ok(
                part,
                format!(
                    "reachable; {} migration(s) pending, applied when `run` starts: {}",
                    pending.len(),
                    pending.join(", ")
                ),
            ));
            // The registry tables exist from the first migration on.
            (pending.len() < store.migrator().iter().count()).then_some(store)
        }
        Err(e) => {
            findings.push(failed(
                part,
                e,
                "check the database user may read the schema",
            ));
            None
        }
    }
}

fn writable_dir(dir: &Path) -> bool {
    let probe = dir.join(format!(".servicedesk-doctor-{}", std::process::id()));
    let ok = std::fs::File::create(&probe).is_ok();
    let _ = std::fs::remove_file(&probe);
    ok
}

/// An OAuth2 token source: whether a token can be had now.
async fn oauth(
    tokens: &crate::oauth::Tokens,
    section: &std::sync::Arc<crate::config::OAuth2Config>,
) -> Finding {
    let part = format!("oauth2 [{}] {}", section.section, section.username);
    let source = match tokens.source(section) {
        Ok(s) => s,
        Err(e) => {
            return failed(
                part,
                format!("{e:#}"),
                &format!("check {} ca_file", section.table()),
            )
        }
    };
    match source.token().await {
        Ok(_) => ok(
            part,
            format!(
                "access token obtained ({}, {})",
                section.grant.as_str(),
                section.token_url
            ),
        ),
        Err(e) => {
            let fix = match &e {
                crate::oauth::OAuthError::LoginRequired { .. }
                | crate::oauth::OAuthError::Revoked { .. } => {
                    format!("run `servicedesk oauth login {}`", section.section)
                }
                crate::oauth::OAuthError::Refused { .. } => format!(
                    "check {} client_id, client_secret (or certificate), tenant and scope, and the application's permissions",
                    section.table()
                ),
                crate::oauth::OAuthError::Unreachable { .. } => format!(
                    "check {} token_url (or tenant) and that the endpoint is reachable",
                    section.table()
                ),
                crate::oauth::OAuthError::Store { .. } => {
                    "the sign-in is kept in the database: fix [database] first".to_string()
                }
            };
            failed(part, e, &fix)
        }
    }
}

async fn mailbox(imap: &ImapConfig, tokens: &crate::oauth::Tokens) -> Finding {
    let part = format!(
        "imap {} on {}:{}/{}",
        imap.username, imap.host, imap.port, imap.mailbox
    );
    match ImapSource::check(imap, tokens).await {
        Ok(c) => {
            let wanted = ["IDLE", "MOVE", "UIDPLUS"];
            let offered: Vec<&str> = wanted
                .iter()
                .copied()
                .filter(|w| c.capabilities.iter().any(|x| x == w))
                .collect();
            let lacking: Vec<&str> = wanted
                .iter()
                .copied()
                .filter(|w| !offered.contains(w))
                .collect();
            let mut detail = format!("login ok, {} message(s) waiting", c.messages);
            if c.missing_folders.is_empty() {
                detail.push_str(", processed and quarantine folders exist");
            } else {
                detail.push_str(&format!(
                    ", {} created when `run` starts",
                    c.missing_folders.join(" and ")
                ));
            }
            if lacking.is_empty() {
                detail.push_str(", IDLE MOVE UIDPLUS offered");
            } else {
                detail.push_str(&format!(
                    ", without {} (works, polling / copying instead)",
                    lacking.join(" ")
                ));
            }
            ok(part, detail)
        }
        Err(e) => {
            let fix = match &e {
                ImapError::Login { .. } if imap.oauth2.is_some() => {
                    "the token was refused: check [imap] username and the mailbox's rights for the application (Microsoft 365: IMAP.AccessAsApp, New-ServicePrincipal, Add-MailboxPermission; see the README)"
                }
                ImapError::Login { .. } => {
                    "check [imap] username and password (or password_file / password_env)"
                }
                ImapError::Connection { reason, .. }
                    if reason.contains("certificate") || reason.contains("Certificate") =>
                {
                    "the server's certificate is not trusted: set [imap] ca_file to the CA that signed it, or check host"
                }
                ImapError::Connection { .. } => {
                    "check [imap] host, port and tls (implicit on 993, starttls or none on 143) and that the server is reachable"
                }
                ImapError::Command { command, .. } if command == "EXAMINE" => {
                    "check [imap] mailbox: that folder does not exist on the server"
                }
                ImapError::Command { .. } => "check the account's rights on the server",
                ImapError::Token(_) => "see the oauth2 line above",
            };
            failed(part, e, fix)
        }
    }
}

async fn smtp(config: &Config, tokens: &crate::oauth::Tokens) -> Finding {
    let Some(smtp) = &config.smtp else {
        return match &config.file_transport {
            Some(ft) => ok(
                "replies",
                format!(
                    "written as files to {} ([file_transport])",
                    ft.dir.display()
                ),
            ),
            None => failed(
                "smtp",
                "no [smtp] section: replies cannot be sent",
                "configure [smtp] (or [file_transport] for a dry run)",
            ),
        };
    };
    let part = format!("smtp {}:{}", smtp.host, smtp.port);
    let sender = match crate::smtp::SmtpSender::new(smtp, 1, tokens) {
        Ok(s) => s,
        Err(e) => return failed(part, format!("{e:#}"), "check [smtp] tls and ca_file"),
    };
    match sender.check().await {
        Ok(()) => ok(
            part,
            match (&smtp.credentials, &smtp.oauth2) {
                (Some((user, _)), _) => {
                    format!("connected, greeted, logged in as {user}; nothing sent")
                }
                (None, Some(o)) => format!(
                    "connected, greeted, logged in as {} with an OAuth2 token; nothing sent",
                    o.username
                ),
                (None, None) => {
                    "connected and greeted (no AUTH configured); nothing sent".to_string()
                }
            },
        ),
        Err(e) => {
            let (crate::smtp::Failure::Permanent(text)
            | crate::smtp::Failure::Transient(text)
            | crate::smtp::Failure::Unreachable(text)) = e;
            let fix = if text.contains("login refused") && smtp.oauth2.is_some() {
                "the token was refused: check [smtp] username and the application's right to send as it (Microsoft 365: SMTP.SendAsApp, and SMTP AUTH on for the mailbox; see the README)"
            } else if text.contains("login refused") {
                "check [smtp] username and password (or password_file / password_env)"
            } else if text.contains("certificate") {
                "the server's certificate is not trusted: set [smtp] ca_file, or check host"
            } else {
                "check [smtp] host, port and tls (starttls on 587, implicit on 465) and that the server is reachable"
            };
            failed(part, text, fix)
        }
    }
}

async fn registry(store: &Store) -> Finding {
    match store.registry().await {
        Ok(r) => {
            let gaps = r.coverage_gaps();
            let persons = r.persons().count();
            if persons == 0 {
                failed(
                    "registry",
                    "no reference persons: every sender would be told they are not registered",
                    "import them: `servicedesk customers import` and `persons import`",
                )
            } else if gaps.is_empty() {
                ok(
                    "registry",
                    format!("{persons} reference person(s), every customer covered"),
                )
            } else {
                failed(
                    "registry",
                    gaps.join("; "),
                    "import the missing contacts (`servicedesk registry check` lists them)",
                )
            }
        }
        Err(e) => failed("registry", e, "check the database"),
    }
}

/// The customers' SLA tiers against `[sla]`: none when neither has any.
async fn sla_tiers(store: &Store, config: &Config) -> Option<Finding> {
    let registry = match store.registry().await {
        Ok(r) => r,
        Err(e) => return Some(failed("sla", e, "check the database")),
    };
    let customers = registry.customers();
    let with_tier: Vec<_> = customers.iter().filter(|c| c.sla.is_some()).collect();
    if config.sla.tiers.is_empty() && with_tier.is_empty() {
        return None;
    }
    let unknown: Vec<String> = with_tier
        .iter()
        .filter_map(|c| {
            let tier = c.sla.as_deref()?;
            config
                .sla
                .tier(tier)
                .is_none()
                .then(|| format!("{}: {tier}", c.name))
        })
        .collect();
    Some(if unknown.is_empty() {
        ok(
            "sla",
            format!(
                "{} tier(s), {} customer(s) with a tier{}; open {}",
                config.sla.tiers.len(),
                with_tier.len(),
                config
                    .sla
                    .default_tier
                    .as_deref()
                    .map(|d| format!(", the others {d}"))
                    .unwrap_or_default(),
                config.sla.calendar.describe()
            ),
        )
    } else {
        failed(
            "sla",
            format!(
                "customers with a tier [sla] does not define (their tickets get no due times): {}",
                unknown.join("; ")
            ),
            &format!(
                "define the tier in [sla] or import the customers with one of: {}",
                config.sla.tier_names()
            ),
        )
    })
}

fn templates(config: &Config) -> Finding {
    let from = config.reply_from();
    let fix = "correct the template ([support] templates_dir; see templates/README.md)";
    let replier = match crate::reply::Replier::new(
        &from,
        &config.support.desk_name,
        &config.support.address,
        config.support.templates_dir.as_deref(),
    ) {
        Ok(r) => r,
        Err(e) => return failed("templates", e, fix),
    };
    let sample = crate::mail::parse(
        b"From: An Peeters <an.peeters@example.be>\r\nSubject: Test\r\nMessage-ID: <doctor@example.be>\r\n\r\nTest\r\n",
    )
    .expect("the sample mail parses");
    for language in Language::ALL {
        for notice in Notice::ALL.into_iter().filter(|n| n.is_automatic()) {
            let ticket = matches!(
                notice,
                Notice::Received | Notice::Chargeable | Notice::Suspended
            );
            let request = crate::reply::ReplyRequest {
                notice,
                language,
                ticket: ticket.then_some("CS-000001"),
                inbound: &sample,
                recipient: "an.peeters@example.be",
                name: "An Peeters",
                customer: ticket.then_some("WZC Test"),
                category: Some(crate::domain::Category::Question),
                reason: (notice == Notice::Chargeable)
                    .then_some(crate::domain::ChargeReason::Training),
            };
            if let Err(e) = replier.render(&request) {
                return failed(format!("templates {language}/{notice}"), e, fix);
            }
        }
    }
    ok(
        "templates",
        format!(
            "{} languages × {} notices render",
            Language::ALL.len(),
            Notice::ALL.iter().filter(|n| n.is_automatic()).count()
        ),
    )
}

/// With `[web] listen`: someone can log in. (The address is not bound
/// here: the running daemon may hold it.)
async fn workspace(listen: std::net::SocketAddr, store: &Store) -> Finding {
    match store.agents().await {
        Ok(agents) => match agents.iter().filter(|a| a.active).count() {
            0 => failed(
                "workspace",
                format!("http://{listen}: no active agent can log in"),
                "add one: printf '%s\\n' \"$PASSWORD\" | servicedesk agents add EMAIL --name NAME --role admin",
            ),
            n => ok("workspace", format!("http://{listen}, {n} active agent(s)")),
        },
        Err(e) => failed(
            "workspace",
            e,
            "bring the database up to date: any other command (e.g. `servicedesk agents list`) migrates it",
        ),
    }
}

fn sorting(config: &Config) -> Finding {
    match crate::learn::Sorting::load(
        config.triage.rules_file.as_deref(),
        config.triage.model_file.as_deref(),
    ) {
        Ok(s) => ok(
            "sorting",
            format!(
                "{} rules; {}",
                config
                    .triage
                    .rules_file
                    .as_ref()
                    .map_or("built-in".to_string(), |p| p.display().to_string()),
                match (&s.model, &config.triage.model_file) {
                    (None, _) => "no model (rules alone)".to_string(),
                    (Some(m), None) => format!("built-in model, {}", m.describe()),
                    (Some(m), Some(p)) => format!("model {}, {}", p.display(), m.describe()),
                }
            ),
        ),
        Err(e) => failed(
            "sorting",
            format!("{e:#}"),
            "correct [triage] rules_file / model_file, or remove them to use the built-in ones",
        ),
    }
}
