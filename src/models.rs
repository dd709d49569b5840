//! The desk's own sorting model: trained on the built-in corpora plus its
//! agents' corrections (`servicedesk model train`, or the daemon every
//! `[triage] retrain_every` corrected tickets), put in use only when it is
//! no worse on the held-out parts than the model in use, kept in the
//! database with the ones before it (`servicedesk model list|use`), and
//! picked up by every daemon sharing the database without a restart.

use sha2::{Digest, Sha256};

use crate::learn::{self, HeldOut};
use crate::store::{NewModel, Store};
use crate::triage::model::{self, Model};

/// How many more held-out mails a new model may get wrong (in category,
/// chargeable flag, critical priority, each) than the model in use and the
/// built-in one: see [`HeldOut::no_worse_than`].
pub const SLACK: u32 = 1;

/// What a training round did.
#[derive(Debug, Clone, PartialEq)]
pub struct Trained {
    /// The new model's id in the store.
    pub id: i64,
    /// Whether it replaced the model in use.
    pub in_use: bool,
    pub corrections: i64,
    pub figures: HeldOut,
    /// The model it was compared with: its id (`None`: built in) and figures.
    pub compared_with: (Option<i64>, HeldOut),
}

impl std::fmt::Display for Trained {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let old = match self.compared_with.0 {
            Some(id) => format!("model {id}"),
            None => "the built-in model".to_string(),
        };
        writeln!(
            f,
            "model {} trained on the built-in corpora and {} corrected ticket(s)",
            self.id, self.corrections
        )?;
        writeln!(f, "  new:     {}", self.figures)?;
        writeln!(f, "  in use:  {} ({old})", self.compared_with.1)?;
        if self.in_use {
            write!(
                f,
                "model {} is now in use; `servicedesk model use` goes back",
                self.id
            )
        } else {
            write!(
                f,
                "kept {old}: the new model gets more held-out mail wrong, by more than {SLACK} (model {} is stored, not used)",
                self.id
            )
        }
    }
}

/// A stored model's bytes read back, its id named in the error.
///
/// # Errors
///
/// When the bytes are not a model.
pub fn from_stored(id: i64, bytes: &[u8]) -> anyhow::Result<Model> {
    Model::from_bytes(bytes).map_err(|e| anyhow::anyhow!("stored model {id}: {e}"))
}

/// The model in use: the stored one marked active, or the built-in one.
///
/// # Errors
///
/// On database failure, or when the stored bytes are not a model.
pub async fn in_use(store: &Store) -> anyhow::Result<(Option<i64>, Option<Model>)> {
    match store.active_model_id().await? {
        Some(id) => {
            let bytes = store.model_bytes(id).await?;
            Ok((Some(id), Some(from_stored(id, &bytes)?)))
        }
        None => Ok((None, model::load(None)?)),
    }
}

/// Trains a new model on the built-in corpora and the desk's corrections,
/// judges it and the model in use on the held-out parts, and keeps it;
/// it is put in use only if it is no worse.
///
/// # Errors
///
/// On database failure.
pub async fn train(store: &Store) -> anyhow::Result<Trained> {
    let (corrected, _unknown) = store.corrected_tickets().await?;
    let corrections = store.corrected_ticket_count().await?;
    let (current_id, current) = in_use(store).await?;
    // Training and judging take a few seconds of CPU: off the async threads.
    let (bytes, figures, old, fine) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let bytes = learn::retrain(&corrected)?.to_bytes();
        // Judged as it will be loaded: the stored weights are rounded.
        let new = Model::from_bytes(&bytes)?;
        let figures = learn::judge(&new)?;
        // Give or take one mail against the model in use, and never more
        // than that below the built-in model: small slips cannot add up
        // over many rounds. With no stored model in use, the two are one.
        let builtin = match model::load(None)? {
            Some(m) => Some(learn::judge(&m)?),
            None => None,
        };
        let old = match (&current, current_id) {
            (Some(m), Some(_)) => Some(learn::judge(m)?),
            _ => builtin,
        };
        let old = old.or(builtin).unwrap_or(figures);
        let fine = figures.no_worse_than(&old, SLACK)
            && builtin.is_none_or(|b| figures.no_worse_than(&b, SLACK));
        Ok((bytes, figures, old, fine))
    })
    .await??;
    let in_use = fine;
    let sha256: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let report = serde_json::json!({
        "held_out": figures,
        "compared_with": { "model": current_id, "held_out": old },
    });
    let than = current_id.map_or_else(
        || "the built-in model".to_string(),
        |id| format!("model {id}"),
    );
    let note = if in_use {
        format!("passed: no worse on the held-out mail than {than} (give or take {SLACK})")
    } else {
        format!("held back: worse on the held-out mail than {than} (by more than {SLACK})")
    };
    let id = store
        .save_model(
            &NewModel {
                bytes: &bytes,
                sha256: &sha256,
                corrections,
                report: &report,
                note: &note,
            },
            in_use,
        )
        .await?;
    Ok(Trained {
        id,
        in_use,
        corrections,
        figures,
        compared_with: (current_id, old),
    })
}
