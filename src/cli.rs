//! Subcommands to library calls, output formats and exit codes.
//!
//! Exit codes: 0 success; 1 `registry check` found gaps; 2 an error (the
//! cause chain is printed); 75 (EX_TEMPFAIL) when `ingest` could not store
//! the message and the MTA should retry.

use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::config::{self, Config};
use crate::domain::{AgentRole, Category, ChargeReason, ContractStatus, Priority, TicketStatus};
use crate::learn;
use crate::listing;
use crate::pipeline::{Pipeline, RawMessage};
use crate::registry;
use crate::store::{Store, TicketFilter};

/// EX_TEMPFAIL from sysexits.h: the MTA keeps the message and retries.
pub const EXIT_TEMPFAIL: u8 = 75;

#[derive(Debug, Parser)]
#[command(
    name = "servicedesk",
    version,
    about = "Turns a support mailbox into pre-sorted tickets and answers at once"
)]
pub struct Cli {
    /// The configuration file.
    #[arg(long, global = true, env = "SERVICEDESK_CONFIG", default_value = config::DEFAULT_PATH)]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: fetch mail, sort it into tickets, send the replies.
    Run {
        /// Process all mail now in the mailbox, deliver every queued reply, and exit.
        #[arg(long)]
        once: bool,
    },
    /// Read one RFC 5322 message on stdin (MTA pipe delivery).
    Ingest,
    /// Check the configuration, database, mailboxes, SMTP, registry, templates
    /// and sorting without changing anything; exit 0 only if all pass.
    Doctor,
    /// Customers and their contract status.
    Customers {
        #[command(subcommand)]
        command: CustomersCommand,
    },
    /// Reference persons of customers.
    Persons {
        #[command(subcommand)]
        command: PersonsCommand,
    },
    /// The registry of customers and reference persons.
    Registry {
        #[command(subcommand)]
        command: RegistryCommand,
    },
    /// Tickets, pre-sorted into queues.
    Tickets {
        #[command(subcommand)]
        command: TicketsCommand,
    },
    /// Every inbound message seen, with its outcome.
    Intake {
        #[command(subcommand)]
        command: IntakeCommand,
    },
    /// Replies waiting to be sent, sent, or failed.
    Outbox {
        #[command(subcommand)]
        command: OutboxCommand,
    },
    /// Calls to other systems when tickets are created, change status or get a charge decision.
    Webhooks {
        #[command(subcommand)]
        command: WebhooksCommand,
    },
    /// Fit the sorting model on a labelled corpus, and on agents' corrections when asked.
    ///
    /// The same labels, mails and corrections always give the same model file,
    /// byte for byte. No database is read unless `--corrections-from` names a
    /// configuration; the output says where the corrections came from.
    Train(TrainArgs),
    /// Measure the sorting on labelled mail: precision/recall, confusion, chargeable, language.
    Eval(EvalArgs),
    /// The desk's own sorting model: trained on the built-in corpora and the
    /// agents' corrections, kept in the database, picked up by running
    /// daemons within seconds.
    Model {
        #[command(subcommand)]
        command: ModelCommand,
    },
    /// The agents who work in the workspace.
    Agents {
        #[command(subcommand)]
        command: AgentsCommand,
    },
    /// OAuth2 sign-ins of mailboxes and the SMTP server (`auth = "oauth2"`).
    Oauth {
        #[command(subcommand)]
        command: OauthCommand,
    },
    /// Serve the agents' workspace alone (no mail fetching), on `[web] listen`.
    Web,
    /// Run the real pipeline on the bundled sample mailbox (SQLite, no server needed).
    Demo {
        /// Where the demo keeps its database, mailbox copy and replies.
        #[arg(long, default_value = "demo-out")]
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum OauthCommand {
    /// Sign in once with the device code (Google, delegated Microsoft 365):
    /// shows a web address and a code, waits, stores the refresh token.
    Login {
        /// `imap` (`imap.2`, ... for further mailboxes) or `smtp`.
        section: String,
        /// Sign in in a browser that reaches this machine (the authorization
        /// code with PKCE on a loopback address) rather than with a device
        /// code; always so for Google.
        #[arg(long)]
        browser: bool,
        /// The loopback port the browser is sent back to (for an SSH tunnel);
        /// any free one when not given.
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
    /// Gets an access token for every OAuth2 section now and says how it went.
    Status,
}

#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// The newest deliveries: pending (with the next attempt), delivered or failed.
    List {
        #[command(flatten)]
        list: ListArgs,
        /// How many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Train a new model on the built-in corpora and this desk's corrections;
    /// it is put in use only if it is no worse on the held-out mail.
    Train,
    /// The stored models, newest first, the one in use marked.
    List {
        #[command(flatten)]
        list: ListArgs,
    },
    /// Put a stored model in use (its number from `model list`), or `builtin`.
    Use { model: String },
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Labels CSV (`file,category,chargeable_reason,language`), files relative
    /// to its folder; repeat for several corpora.
    #[arg(
        long,
        default_values = [
            "tests/corpus/labels.csv",
            "tests/blind/labels.csv",
            "tests/blind2/labels.csv",
            "tests/blind3/labels.csv"
        ]
    )]
    labels: Vec<PathBuf>,
    /// Where to write the model.
    #[arg(long, default_value = "config/model.bin")]
    out: PathBuf,
    /// Also train on the held-out files (every fifth); then they no longer measure anything.
    #[arg(long)]
    include_holdout: bool,
    /// Also train on the tickets agents corrected (`tickets set`), read from the
    /// database of this configuration file.
    #[arg(long, value_name = "CONFIG")]
    corrections_from: Option<PathBuf>,
    /// Train on the corpus alone (what happens without `--corrections-from`).
    #[arg(long, hide = true, conflicts_with = "corrections_from")]
    no_corrections: bool,
    /// Leave out the validation part too (for tuning against `eval --validation`).
    #[arg(long)]
    without_validation: bool,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The folder the label file's paths are relative to.
    dir: PathBuf,
    /// Labels CSV: `file,category,chargeable_reason,language`.
    labels: PathBuf,
    /// A model file instead of the built-in one.
    #[arg(long)]
    model: Option<PathBuf>,
    /// A rules file instead of the built-in one (a desk's `[triage] rules_file`).
    #[arg(long)]
    rules: Option<PathBuf>,
    /// The rules alone, without the model.
    #[arg(long)]
    rules_only: bool,
    /// Only the held-out files (every fifth).
    #[arg(long)]
    holdout: bool,
    /// Only the validation files (numbers 1, 6, 11, …), for tuning.
    #[arg(long, conflicts_with = "holdout")]
    validation: bool,
    /// List the files that were sorted wrongly.
    #[arg(long)]
    mistakes: bool,
}

#[derive(Debug, Subcommand)]
pub enum CustomersCommand {
    /// Import a CSV file; re-importing the same file changes nothing. A
    /// suspended customer made active again resumes its on-hold tickets.
    Import { file: PathBuf },
    /// List the customers with their contract status and campuses.
    List {
        #[command(flatten)]
        list: ListArgs,
    },
    /// Set a customer's contract status. Made active again, its on-hold
    /// tickets return to the queue and each one's writer is told work resumes.
    Set {
        name: String,
        #[arg(long, value_enum, ignore_case = true)]
        status: ContractStatus,
    },
}

#[derive(Debug, Subcommand)]
pub enum PersonsCommand {
    /// Import a CSV file; re-importing the same file changes nothing.
    Import {
        file: PathBuf,
        /// For the customers in the file, deactivate the persons absent from it.
        #[arg(long)]
        replace: bool,
    },
    /// List reference persons, the deactivated ones marked.
    List {
        #[command(flatten)]
        list: ListArgs,
        /// Only this customer's.
        #[arg(long)]
        customer: Option<String>,
    },
    /// Deactivate a reference person: kept for the history, no longer registered.
    Remove { email: String },
}

#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// List customers missing a general or technical contact or a campus reference person.
    Check,
    /// Write the registry back as `customers.csv` and `persons.csv` into DIR
    /// (active persons; importing them changes nothing).
    Export { dir: PathBuf },
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print one JSON array.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
pub enum TicketsCommand {
    /// List tickets by queue (category), then status.
    List {
        #[command(flatten)]
        list: ListArgs,
        /// Only this category.
        #[arg(long, value_enum, ignore_case = true)]
        category: Option<Category>,
        /// Only this status.
        #[arg(long, value_enum, ignore_case = true)]
        status: Option<TicketStatus>,
        /// Only the tickets this search finds (words of the mail, replies and
        /// notes in any form or accent, a ticket number, customer or
        /// sender), best first within each queue.
        #[arg(long, value_name = "TEXT")]
        q: Option<String>,
    },
    /// Correct a ticket's sorting or move its status; recorded as a correction.
    Set {
        number: String,
        #[arg(long, value_enum, ignore_case = true)]
        category: Option<Category>,
        /// infrastructure, training, own_modification, on_site, change_request, or none.
        #[arg(long, value_parser = parse_reason)]
        chargeable_reason: Option<ReasonArg>,
        #[arg(long, value_enum, ignore_case = true)]
        status: Option<TicketStatus>,
        /// normal, high or critical.
        #[arg(long, value_enum, ignore_case = true)]
        priority: Option<Priority>,
    },
    /// One ticket with its thread and why it was sorted so.
    Show {
        number: String,
        #[command(flatten)]
        list: ListArgs,
    },
    /// Merge a ticket into another of the same customer: its thread moves
    /// there, it is closed, and mail for it lands there.
    Merge {
        number: String,
        /// The ticket that stays.
        #[arg(long)]
        into: String,
    },
    /// Undo a merge: the messages that moved go back, the status returns.
    Unmerge { number: String },
}

#[derive(Debug, Subcommand)]
pub enum AgentsCommand {
    /// Create or update an agent; the password is read from stdin (one line).
    Add {
        email: String,
        #[arg(long)]
        name: String,
        #[arg(long, value_enum, ignore_case = true)]
        role: AgentRole,
    },
    /// The agent can no longer log in; their sessions and API tokens end at once.
    Disable { email: String },
    /// Print a new API token for the agent (shown once, stored hashed).
    Token {
        email: String,
        /// What the token is for, e.g. the script that uses it.
        #[arg(long, default_value = "api")]
        name: String,
    },
    /// List the agents, their roles, and who is disabled.
    List {
        #[command(flatten)]
        list: ListArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum IntakeCommand {
    /// List every inbound message seen.
    List {
        #[command(flatten)]
        list: ListArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// List queued, sent and failed replies.
    List {
        #[command(flatten)]
        list: ListArgs,
    },
    /// Put a failed reply back in the queue.
    Retry { id: i64 },
}

/// `--chargeable-reason`: a reason, or `none` for work within the contract.
#[derive(Debug, Clone, Copy)]
pub struct ReasonArg(Option<ChargeReason>);

fn parse_reason(s: &str) -> Result<ReasonArg, String> {
    if s.trim().eq_ignore_ascii_case("none") {
        return Ok(ReasonArg(None));
    }
    s.parse().map(|r| ReasonArg(Some(r))).map_err(|_| {
        let reasons: Vec<&str> = ChargeReason::ALL.iter().map(|r| r.as_str()).collect();
        format!("use {} or none", reasons.join(", "))
    })
}

/// Runs the command and turns the result into an exit code.
pub async fn main(cli: Cli) -> ExitCode {
    match dispatch(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("servicedesk: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let store = Store::connect(config.database.connect_url())
        .await
        .with_context(|| {
            format!(
                "{}: [database] url {}",
                config.path.display(),
                config.database.shown_url()
            )
        })?;
    store.set_sla_policy(config.sla.clone());
    Ok(store)
}

async fn oauth(config: &Config, command: OauthCommand) -> anyhow::Result<ExitCode> {
    let sections = crate::oauth::sections(config);
    let names = || {
        let n: Vec<&str> = sections.iter().map(|s| s.section.as_str()).collect();
        if n.is_empty() {
            "none: no [imap] or [smtp] has auth = \"oauth2\"".to_string()
        } else {
            n.join(", ")
        }
    };
    match command {
        OauthCommand::Login {
            section,
            browser,
            port,
        } => {
            let Some(chosen) = sections.iter().find(|s| s.section == section) else {
                anyhow::bail!(
                    "{}: no OAuth2 section {section:?} (sections with auth = \"oauth2\": {})",
                    config.path.display(),
                    names()
                );
            };
            let store = open_store(config).await?;
            let mut out = std::io::stdout();
            let how = if browser || port != 0 {
                crate::oauth::SignIn::Browser { port }
            } else {
                crate::oauth::SignIn::Device
            };
            crate::oauth::login(chosen, &store, how, &mut out).await?;
            let shared: Vec<&str> = sections
                .iter()
                .filter(|s| s.stored_as() == chosen.stored_as() && s.section != chosen.section)
                .map(|s| s.section.as_str())
                .collect();
            if !shared.is_empty() {
                println!("The same sign-in serves [{}] too.", shared.join("], ["));
            }
            Ok(ExitCode::SUCCESS)
        }
        OauthCommand::Status => {
            if sections.is_empty() {
                println!("no OAuth2 sections ({})", names());
                return Ok(ExitCode::SUCCESS);
            }
            let store = open_store(config).await?;
            let tokens = crate::oauth::Tokens::new(store.clone());
            tokens.prepare(config)?;
            let mut ok = true;
            for s in &sections {
                let signed_in = match s.grant {
                    crate::config::Grant::RefreshToken => store
                        .oauth_refresh_token_stored_at(&s.stored_as())
                        .await?
                        .map(|at| format!(", sign-in stored {at}"))
                        .unwrap_or_default(),
                    crate::config::Grant::ClientCredentials => String::new(),
                };
                match tokens.source(s)?.token().await {
                    Ok(_) => println!(
                        "ok      [{}] {} ({}{signed_in}): access token obtained",
                        s.section,
                        s.username,
                        s.grant.as_str()
                    ),
                    Err(e) => {
                        ok = false;
                        println!("FAILED  {e}");
                    }
                }
            }
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = || Config::load(&cli.config);
    match cli.command {
        Command::Run { once } => run(&config()?, once).await,
        Command::Ingest => Ok(ingest(&config()?).await),
        Command::Doctor => {
            let findings = crate::doctor::examine(&cli.config).await;
            for f in &findings {
                println!("{f}");
            }
            Ok(if findings.iter().all(|f| f.ok) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Customers { command } => customers(&config()?, command).await,
        Command::Persons { command } => persons(&config()?, command).await,
        Command::Registry {
            command: RegistryCommand::Check,
        } => registry_check(&config()?).await,
        Command::Registry {
            command: RegistryCommand::Export { dir },
        } => registry_export(&config()?, &dir).await,
        Command::Tickets { command } => tickets(&config()?, command).await,
        Command::Intake {
            command: IntakeCommand::List { list },
        } => intake(&config()?, &list).await,
        Command::Outbox { command } => outbox(&config()?, command).await,
        Command::Train(args) => train(&args).await,
        Command::Eval(args) => eval(&args),
        Command::Model { command } => model(&config()?, command).await,
        Command::Webhooks {
            command: WebhooksCommand::List { list, limit },
        } => {
            let config = config()?;
            let store = open_store(&config).await?;
            let mut deliveries = store.webhook_deliveries(limit.max(1)).await?;
            for d in &mut deliveries {
                d.hook = crate::webhooks::origin_of(&d.hook).to_string();
            }
            if list.json {
                print_json(&deliveries)?;
            } else {
                print!("{}", listing::webhooks(&deliveries));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Agents { command } => agents(&config()?, command).await,
        Command::Oauth { command } => oauth(&config()?, command).await,
        Command::Web => {
            let config = config()?;
            let store = open_store(&config).await?;
            crate::metrics::allow_on_web(config.metrics.web_token.clone());
            crate::web::serve(&config, store, shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo { dir } => {
            crate::demo::run(&dir).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn model(config: &Config, command: ModelCommand) -> anyhow::Result<ExitCode> {
    let store = open_store(config).await?;
    if config.triage.model_file.is_some() {
        eprintln!(
            "note: {} sets [triage] model_file, so the daemon sorts with that file, not with these models",
            config.path.display()
        );
    }
    match command {
        ModelCommand::Train => {
            let trained = crate::models::train(&store).await?;
            println!("{trained}");
        }
        ModelCommand::List { list } => {
            let models = store.models().await?;
            if list.json {
                print_json(&models)?;
            } else {
                print!("{}", listing::models(&models));
            }
        }
        ModelCommand::Use { model } => {
            let id = match model.trim() {
                m if m.eq_ignore_ascii_case("builtin") || m.eq_ignore_ascii_case("built-in") => {
                    None
                }
                m => Some(m.parse::<i64>().map_err(|_| {
                    anyhow::anyhow!(
                        "{m:?} is not a model number (see `servicedesk model list`) or `builtin`"
                    )
                })?),
            };
            store.use_model(id).await?;
            match id {
                Some(id) => println!("model {id} is in use; running daemons switch within seconds"),
                None => {
                    println!("the built-in model is in use; running daemons switch within seconds")
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn run(config: &Config, once: bool) -> anyhow::Result<ExitCode> {
    if !once {
        crate::daemon::run(config, shutdown_signal()).await?;
        return Ok(ExitCode::SUCCESS);
    }
    let s = crate::daemon::run_once(config).await?;
    eprintln!(
        "processed {} message(s), quarantined {}, replies sent {}, failed {}, still queued {}",
        s.processed, s.quarantined, s.replies_sent, s.replies_failed, s.replies_pending
    );
    if s.replies_pending > 0 {
        eprintln!("servicedesk: the mail server did not take every reply; they stay queued for the next run");
        return Ok(ExitCode::from(EXIT_TEMPFAIL));
    }
    Ok(ExitCode::SUCCESS)
}

async fn agents(config: &Config, command: AgentsCommand) -> anyhow::Result<ExitCode> {
    let store = open_store(config).await?;
    match command {
        AgentsCommand::Add { email, name, role } => {
            let email = email.trim().to_lowercase();
            anyhow::ensure!(
                email
                    .split_once('@')
                    .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty()),
                "{email:?} is not an e-mail address (like an.peeters@desk.example)"
            );
            anyhow::ensure!(
                !name.trim().is_empty(),
                "--name is empty: give the agent's name"
            );
            let mut password = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut password)
                .context("cannot read the password from stdin")?;
            let password = password.trim_end_matches(['\r', '\n']).to_string();
            anyhow::ensure!(
                !password.is_empty(),
                "no password on stdin: pipe it in, e.g. `printf '%s\\n' \"$PASSWORD\" | servicedesk agents add ...`"
            );
            let hash = crate::agents::hash_password(password).await?;
            let added = store.upsert_agent(&email, name.trim(), role, &hash).await?;
            println!(
                "{email}: {} ({role})",
                match added {
                    crate::store::AgentAdded::Created => "added",
                    crate::store::AgentAdded::Updated => "updated, sessions ended",
                }
            );
        }
        AgentsCommand::Disable { email } => {
            store.disable_agent(&email).await.map_err(|e| match e {
                crate::store::StoreError::NotFound(_) => {
                    anyhow::anyhow!("{email} is not an agent; `servicedesk agents list` shows them")
                }
                e => e.into(),
            })?;
            println!("{email}: disabled; their sessions and API tokens ended");
        }
        AgentsCommand::Token { email, name } => {
            let token = crate::agents::new_secret()?;
            store
                .add_api_token(&email, name.trim(), &crate::agents::secret_hash(&token))
                .await
                .map_err(|e| match e {
                    crate::store::StoreError::NotFound(_) => anyhow::anyhow!(
                        "{email} is not an active agent; `servicedesk agents list` shows them"
                    ),
                    e => e.into(),
                })?;
            eprintln!("a new API token for {email} ({name}); it is shown only now:");
            println!("{token}");
        }
        AgentsCommand::List { list } => {
            let agents = store.agents().await?;
            if list.json {
                print_json(&agents)?;
            } else {
                for a in &agents {
                    println!(
                        "{:<36} {:<6} {}{}",
                        a.email,
                        a.role,
                        a.name,
                        if a.active { "" } else { "  (disabled)" }
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn customers(config: &Config, command: CustomersCommand) -> anyhow::Result<ExitCode> {
    let store = open_store(config).await?;
    match command {
        CustomersCommand::Import { file } => {
            let text = read_csv(&file)?;
            let customers = registry::parse_customers_for(&file, &text, Some(&config.sla))?;
            let (s, resumed) = crate::contract::import(config, &store, &customers).await?;
            println!(
                "customers: {} added, {} updated, {} unchanged",
                s.added, s.updated, s.unchanged
            );
            print_resumed(&resumed);
        }
        CustomersCommand::List { list } => {
            let registry = store.registry().await?;
            let customers = registry.customers();
            if list.json {
                print_json(&customers)?;
            } else {
                for c in customers {
                    println!("{}", listing::customer_line(c));
                }
            }
        }
        CustomersCommand::Set { name, status } => {
            let resumed = crate::contract::set(config, &store, &name, status).await?;
            println!("{name}: contract {status}");
            print_resumed(&resumed);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_resumed(resumed: &[String]) {
    if !resumed.is_empty() {
        println!(
            "back in the queue, their writers told work resumes: {}",
            resumed.join(", ")
        );
    }
}

async fn persons(config: &Config, command: PersonsCommand) -> anyhow::Result<ExitCode> {
    let store = open_store(config).await?;
    match command {
        PersonsCommand::Import { file, replace } => {
            let text = read_csv(&file)?;
            let known = store.registry().await?;
            let persons = registry::parse_persons(&file, &text, |name| {
                known.customer(name).map(|c| c.name.clone())
            })?;
            let s = store.import_persons(&persons, replace).await?;
            println!(
                "persons: {} added, {} updated, {} unchanged{}",
                s.added,
                s.updated,
                s.unchanged,
                if replace {
                    format!(", {} deactivated", s.deactivated)
                } else {
                    String::new()
                }
            );
        }
        PersonsCommand::List { list, customer } => {
            let mut persons = store.persons().await?;
            if let Some(c) = &customer {
                persons.retain(|(p, _)| p.customer.eq_ignore_ascii_case(c));
            }
            if list.json {
                let rows: Vec<serde_json::Value> = persons
                    .iter()
                    .map(|(p, active)| {
                        let mut v = serde_json::to_value(p).unwrap_or_default();
                        v["active"] = serde_json::Value::Bool(*active);
                        v
                    })
                    .collect();
                print_json(&rows)?;
            } else {
                for (p, active) in &persons {
                    println!("{}", listing::person_line(p, *active));
                }
            }
        }
        PersonsCommand::Remove { email } => {
            anyhow::ensure!(
                store.remove_person(&email).await?,
                "{email} is not a registered reference person"
            );
            println!("{email}: no longer registered (kept on their tickets)");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn registry_export(config: &Config, dir: &Path) -> anyhow::Result<ExitCode> {
    let registry = open_store(config).await?.registry().await?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (name, text) in [
        ("customers.csv", registry::customers_csv(&registry)),
        ("persons.csv", registry::persons_csv(&registry)),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        println!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

async fn registry_check(config: &Config) -> anyhow::Result<ExitCode> {
    let store = open_store(config).await?;
    let gaps = store.registry().await?.coverage_gaps();
    if gaps.is_empty() {
        println!("every customer has a general and a technical contact and a reference person per campus");
        return Ok(ExitCode::SUCCESS);
    }
    for g in &gaps {
        println!("{g}");
    }
    Ok(ExitCode::from(1))
}

async fn intake(config: &Config, list: &ListArgs) -> anyhow::Result<ExitCode> {
    let intake = open_store(config).await?.intake().await?;
    if list.json {
        print_json(&intake)?;
    } else {
        for i in &intake {
            println!("{}", listing::intake_line(i));
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn outbox(config: &Config, command: OutboxCommand) -> anyhow::Result<ExitCode> {
    let store = open_store(config).await?;
    match command {
        OutboxCommand::List { list } => {
            let entries = store.outbox().await?;
            if list.json {
                print_json(&entries)?;
            } else {
                for e in &entries {
                    println!("{}", listing::outbox_line(e));
                }
            }
        }
        OutboxCommand::Retry { id } => {
            store.retry_reply(id).await?;
            println!("reply {id} queued again");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn train(args: &TrainArgs) -> anyhow::Result<ExitCode> {
    let part = match (args.include_holdout, args.without_validation) {
        (true, _) => learn::Part::All,
        (false, true) => learn::Part::TrainingWithoutValidation,
        (false, false) => learn::Part::Training,
    };
    let mut corpus = Vec::new();
    for labels in &args.labels {
        let dir = labels.parent().unwrap_or(Path::new("."));
        corpus.extend(learn::corpus(dir, labels, part)?);
    }
    let corrected = match &args.corrections_from {
        Some(path) => {
            let config = Config::load(path)?;
            let (corrected, unknown) = open_store(&config).await?.corrected_tickets().await?;
            println!(
                "agent corrections: {} from {} (the [database] of {}){}",
                corrected.len(),
                config.database.shown_url(),
                path.display(),
                if unknown > 0 {
                    format!("; {unknown} left out: category or reason unknown to this version")
                } else {
                    String::new()
                }
            );
            corrected
        }
        None => {
            println!(
                "agent corrections: none (--corrections-from CONFIG adds those in that configuration's database)"
            );
            Vec::new()
        }
    };
    let model = learn::fit(&corpus, &corrected)?;
    std::fs::write(&args.out, model.to_bytes())
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    println!(
        "trained on {} corpus mails and {} agent corrections; model written to {}",
        corpus.len(),
        corrected.len(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn eval(args: &EvalArgs) -> anyhow::Result<ExitCode> {
    let learn::Sorting { rules, model } =
        learn::Sorting::load(args.rules.as_deref(), args.model.as_deref())?;
    let model = model.filter(|_| !args.rules_only);
    let part = match (args.holdout, args.validation) {
        (true, _) => learn::Part::Holdout,
        (false, true) => learn::Part::Validation,
        (false, false) => learn::Part::All,
    };
    let set = learn::corpus(&args.dir, &args.labels, part)?;
    let started = std::time::Instant::now();
    let report = learn::evaluate(&rules, model.as_ref(), &set)?;
    print!("{report}");
    println!(
        "sorted by {} in {:.2}s",
        if model.is_some() {
            "rules + model"
        } else {
            "rules only"
        },
        started.elapsed().as_secs_f64()
    );
    if args.mistakes {
        for m in &report.mistakes {
            println!("  {m}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn read_csv(file: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(file).with_context(|| format!("{}: cannot read", file.display()))?;
    String::from_utf8(bytes).map_err(|e| {
        let line = e.as_bytes()[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1;
        anyhow::anyhow!(
            "{}: line {line}: not valid UTF-8; save the file as UTF-8",
            file.display()
        )
    })
}

async fn tickets(config: &Config, command: TicketsCommand) -> anyhow::Result<ExitCode> {
    let store = open_store(config).await?;
    match command {
        TicketsCommand::List {
            list,
            category,
            status,
            q,
        } => {
            let tickets = match q.filter(|q| !q.trim().is_empty()) {
                Some(text) => {
                    store
                        .ticket_page(&crate::store::TicketQuery {
                            category,
                            status,
                            text: Some(text),
                            limit: 10_000,
                            ..Default::default()
                        })
                        .await?
                }
                None => store.tickets(&TicketFilter { category, status }).await?,
            };
            if list.json {
                print_json(&tickets)?;
            } else {
                print!("{}", listing::queues(&tickets));
            }
        }
        TicketsCommand::Set {
            number,
            category,
            chargeable_reason,
            status,
            priority,
        } => {
            anyhow::ensure!(
                category.is_some()
                    || chargeable_reason.is_some()
                    || status.is_some()
                    || priority.is_some(),
                "say what to change: --category, --chargeable-reason, --status or --priority"
            );
            let change = crate::store::TicketChange {
                category,
                chargeable_reason: chargeable_reason.map(|r| r.0),
                status,
                priority,
                ..Default::default()
            };
            let number = number.trim().to_ascii_uppercase();
            let changed = store.set_ticket(&number, &change).await?;
            if changed.is_empty() {
                println!("{number}: nothing changed");
            }
            for (field, old, new) in changed {
                println!(
                    "{number}: {field} {} -> {}",
                    old.as_deref().unwrap_or("none"),
                    new.as_deref().unwrap_or("none")
                );
            }
        }
        TicketsCommand::Merge { number, into } => {
            let merged = store.merge_tickets(&number, &into, "cli").await?;
            println!(
                "{}: merged into {} ({} messages moved)",
                merged.from, merged.into, merged.messages
            );
        }
        TicketsCommand::Unmerge { number } => {
            let undone = store.undo_merge(&number, "cli").await?;
            println!(
                "{}: merge into {} undone ({} messages moved back)",
                undone.from, undone.into, undone.messages
            );
        }
        TicketsCommand::Show { number, list } => {
            let (t, thread) = store.ticket(&number).await?;
            let merged_into = store.merge_state(&t.number).await?.merged_into;
            if list.json {
                print_json(&serde_json::json!({
                    "ticket": t,
                    "thread": thread,
                    "merged_into": merged_into.as_ref().map(|m| &m.into),
                }))?;
            } else {
                print!("{}", listing::ticket(&t, &thread));
                if let Some(m) = merged_into {
                    println!(
                        "merged into {} by {} at {} (undo: servicedesk tickets unmerge {})",
                        m.into, m.merged_by, m.merged_at, t.number
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn ingest(config: &Config) -> ExitCode {
    // Read at most the limit; a larger message keeps only its header (the
    // rest is drained, never held), and its ticket says so.
    let max = config.limits.max_message_bytes;
    let mut raw = Vec::new();
    let mut stdin = std::io::stdin().lock();
    if let Err(e) = (&mut stdin).take(max + 1).read_to_end(&mut raw) {
        eprintln!("servicedesk: ingest: cannot read stdin: {e}");
        return ExitCode::from(EXIT_TEMPFAIL);
    }
    let mut oversized = None;
    if raw.len() as u64 > max {
        let rest = std::io::copy(&mut stdin, &mut std::io::sink()).unwrap_or(0);
        oversized = Some(raw.len() as u64 + rest);
        let header_len = crate::mail::header_part(&raw).len();
        raw.truncate(header_len);
    }
    let result: anyhow::Result<()> = async {
        let store = open_store(config).await?;
        let pipeline = Pipeline::new(config, store.clone())?;
        let registry = store.registry().await?;
        let p = pipeline
            .process(
                &RawMessage {
                    bytes: &raw,
                    source: "stdin",
                    source_key: None,
                    oversized,
                },
                &registry,
            )
            .await?;
        eprintln!(
            "accepted: {}{}",
            p.outcome.as_str(),
            p.ticket.map(|t| format!(" {t}")).unwrap_or_default()
        );
        Ok(())
    }
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "servicedesk: ingest: could not store the message, the MTA should retry: {e:#}"
            );
            ExitCode::from(EXIT_TEMPFAIL)
        }
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
