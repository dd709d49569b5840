//! The desk's agents: Argon2id password hashes, random secrets (session
//! ids, CSRF and API tokens) and their stored hashes, and what each role
//! may do.
//!
//! Pure apart from the OS's random source; hashing a password is CPU work
//! that async callers run on a blocking thread ([`hash_password`] and
//! [`verify_password`] are async for that). Secrets never reach a log, an
//! error or `Debug`.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use sha2::{Digest, Sha256};

use crate::domain::AgentRole;

/// Something an agent may or may not do in the workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// See every queue and ticket.
    ReadTickets,
    /// Answer, note, re-sort, change the status, record a charge decision,
    /// take a ticket or give it back.
    WorkTickets,
    /// Assign a ticket to another agent.
    AssignOthers,
    /// Edit the saved replies.
    EditSavedReplies,
    /// Add, change and disable agents; see who they are.
    ManageAgents,
    /// Change the registry of customers and persons.
    ManageRegistry,
}

impl Action {
    /// Every action, for the role matrix's tests and the docs.
    pub const ALL: [Action; 6] = [
        Action::ReadTickets,
        Action::WorkTickets,
        Action::AssignOthers,
        Action::EditSavedReplies,
        Action::ManageAgents,
        Action::ManageRegistry,
    ];
}

/// The role matrix: agent works tickets; lead also assigns and edits saved
/// replies; admin also manages agents and the registry.
pub fn may(role: AgentRole, action: Action) -> bool {
    let needed = match action {
        Action::ReadTickets | Action::WorkTickets => AgentRole::Agent,
        Action::AssignOthers | Action::EditSavedReplies => AgentRole::Lead,
        Action::ManageAgents | Action::ManageRegistry => AgentRole::Admin,
    };
    role >= needed
}

/// Why a password could not be hashed or checked.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("the password is empty")]
    Empty,
    #[error("the password is longer than 1024 bytes")]
    TooLong,
    #[error("password hashing failed: {0}")]
    Hashing(String),
    #[error("the random source failed: {0}")]
    Random(String),
}

/// `n` random bytes from the OS.
///
/// # Errors
///
/// When the OS's random source fails.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], PasswordError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| PasswordError::Random(e.to_string()))?;
    Ok(bytes)
}

/// A new random secret: 32 bytes as 64 hex digits (session ids, tokens).
///
/// # Errors
///
/// When the OS's random source fails.
pub fn new_secret() -> Result<String, PasswordError> {
    Ok(hex(&random_bytes::<32>()?))
}

/// The stored form of a session id or token: SHA-256, hex.
pub fn secret_hash(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares two secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn check_password(password: &str) -> Result<(), PasswordError> {
    if password.is_empty() {
        return Err(PasswordError::Empty);
    }
    if password.len() > 1024 {
        return Err(PasswordError::TooLong);
    }
    Ok(())
}

/// Argon2id with 7 MiB of memory and 5 passes, one lane: one of the
/// equivalent settings OWASP's password storage guidance lists (beside 19
/// MiB and 2 passes), chosen because a login then adds 7 MiB, not 19, to
/// the daemon's peak memory. A stored hash carries its own parameters, so
/// hashes made with other settings still verify.
fn hasher() -> Argon2<'static> {
    let params = argon2::Params::new(7 * 1024, 5, 1, None).unwrap_or_default();
    Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

/// The Argon2id PHC string of a password (`$argon2id$v=19$...`).
///
/// # Errors
///
/// An empty or overlong password, or a failing random source.
pub fn hash_password_now(password: &str) -> Result<String, PasswordError> {
    check_password(password)?;
    let salt = SaltString::encode_b64(&random_bytes::<16>()?)
        .map_err(|e| PasswordError::Hashing(e.to_string()))?;
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hashing(e.to_string()))
}

/// [`hash_password_now`] on a blocking thread.
///
/// # Errors
///
/// As [`hash_password_now`].
pub async fn hash_password(password: String) -> Result<String, PasswordError> {
    tokio::task::spawn_blocking(move || hash_password_now(&password))
        .await
        .map_err(|e| PasswordError::Hashing(e.to_string()))?
}

/// True when `password` matches the stored hash. With `None` (no such
/// agent) a fixed dummy hash is checked instead, so the answer takes as
/// long as for a real account, and is false. Runs on a blocking thread.
pub async fn verify_password(password: String, stored: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| DUMMY_HASH.clone());
        let ok = PasswordHash::new(&stored).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        });
        known && ok
    })
    .await
    .unwrap_or(false)
}

/// A hash of a password nobody knows, with the default parameters.
static DUMMY_HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let password = new_secret().unwrap_or_else(|_| "unknown".into());
    hash_password_now(&password).unwrap_or_default()
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_role_matrix() {
        use Action::*;
        let allowed =
            |role| -> Vec<Action> { Action::ALL.into_iter().filter(|a| may(role, *a)).collect() };
        assert_eq!(allowed(AgentRole::Agent), vec![ReadTickets, WorkTickets]);
        assert_eq!(
            allowed(AgentRole::Lead),
            vec![ReadTickets, WorkTickets, AssignOthers, EditSavedReplies]
        );
        assert_eq!(allowed(AgentRole::Admin), Action::ALL.to_vec());
    }

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let hash = hash_password_now("Corr3ct-Horse").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"), "{hash}");
        assert!(!hash.contains("Corr3ct"));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert!(rt.block_on(verify_password("Corr3ct-Horse".into(), Some(hash.clone()))));
        assert!(!rt.block_on(verify_password("wrong".into(), Some(hash))));
        // Unknown account: the dummy is checked, and the answer is no.
        assert!(!rt.block_on(verify_password("Corr3ct-Horse".into(), None)));
        assert!(matches!(hash_password_now(""), Err(PasswordError::Empty)));
    }

    #[test]
    fn secrets_are_random_and_stored_hashed() {
        let (a, b) = (new_secret().unwrap(), new_secret().unwrap());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_eq!(secret_hash(&a).len(), 64);
        assert_ne!(secret_hash(&a), a);
        assert!(same_secret(&a, &a.clone()));
        assert!(!same_secret(&a, &b));
        assert!(!same_secret(&a, &a[..63]));
    }
}
