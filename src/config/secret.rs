//! Secrets in the configuration: the [`Secret`] type that never shows its
//! value, passwords given as `password`, `password_file` or `password_env`,
//! and the database URL, which may carry one and is shown without it.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ConfigError;

/// A password or other secret. `Debug` and `Display` never show it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for handing to a login call and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where the database is. A PostgreSQL password may sit in the URL or,
/// better, come from `password`, `password_file` or `password_env`; either
/// way `Debug`, errors and logs show the URL without it.
#[derive(Clone)]
pub struct DatabaseConfig {
    /// The URL to connect with, password included.
    url: Secret,
    /// The same URL without password, for people.
    shown: String,
}

impl DatabaseConfig {
    /// The URL to connect with; it may hold the password: hand it to the
    /// database driver and nothing else.
    pub fn connect_url(&self) -> &str {
        self.url.expose()
    }

    /// The URL without password, for messages and logs.
    pub fn shown_url(&self) -> &str {
        &self.shown
    }
}

impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &self.shown)
            .finish()
    }
}

/// `url` without the password of its user part or of a `password=`
/// option: what may be shown to people.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), url),
    };
    let (place, query) = match rest.split_once('?') {
        Some((place, query)) => (place, Some(query)),
        None => (rest, None),
    };
    // The user part ends at the last '@' before the path.
    let authority_end = place.find('/').unwrap_or(place.len());
    let mut shown = match place[..authority_end].rsplit_once('@') {
        Some((login, host)) => match login.split_once(':') {
            Some((user, _)) => format!("{scheme}{user}:***@{host}{}", &place[authority_end..]),
            None => format!("{scheme}{place}"),
        },
        None => format!("{scheme}{place}"),
    };
    if let Some(query) = query {
        let options: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => kv.to_string(),
            })
            .collect();
        shown.push('?');
        shown.push_str(&options.join("&"));
    }
    shown
}

/// `s` percent-encoded for the user part of a URL.
fn encode_userinfo(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `[database]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDatabase {
    url: String,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    password_file: Option<PathBuf>,
    #[serde(default)]
    password_env: Option<String>,
}

impl RawDatabase {
    pub(super) fn resolve(self, path: &Path) -> Result<DatabaseConfig, ConfigError> {
        let shown = redact_url(&self.url);
        let url = self.url;
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(ConfigError::new(
                path,
                format!("[database] url = {shown:?}: use sqlite://FILE or postgres://USER@HOST/DB"),
            ));
        }
        let password = RawSecret::of(self.password, self.password_file, self.password_env)
            .resolve(path, "database")?;
        let Some(password) = password else {
            return Ok(DatabaseConfig {
                url: Secret(url),
                shown,
            });
        };
        if url.starts_with("sqlite:") {
            return Err(ConfigError::new(
                path,
                "[database]: a SQLite database has no password; remove password, password_file or password_env",
            ));
        }
        let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", &url));
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let Some((login, host)) = rest[..authority_end].rsplit_once('@') else {
            return Err(ConfigError::new(
                path,
                format!("[database] url = {shown:?}: name the user the password belongs to, like postgres://USER@HOST/DB"),
            ));
        };
        if login.contains(':') || url.to_ascii_lowercase().contains("password=") {
            return Err(ConfigError::new(
                path,
                "[database]: the url already holds a password; keep it in one place (password_file or password_env, not the url)",
            ));
        }
        let url = format!(
            "{scheme}://{login}:{}@{host}{}",
            encode_userinfo(password.expose()),
            &rest[authority_end..]
        );
        Ok(DatabaseConfig {
            url: Secret(url),
            shown,
        })
    }
}

/// A section's `password`, `password_file` and `password_env` as written.
/// Each section declares the three keys itself rather than flattening this
/// struct in: serde's `flatten` loses the line of a mistyped key.
#[derive(Default)]
pub(super) struct RawSecret {
    password: Option<String>,
    password_file: Option<PathBuf>,
    password_env: Option<String>,
}

impl RawSecret {
    pub(super) fn of(
        password: Option<String>,
        password_file: Option<PathBuf>,
        password_env: Option<String>,
    ) -> RawSecret {
        RawSecret {
            password,
            password_file,
            password_env,
        }
    }

    pub(super) fn resolve(self, path: &Path, section: &str) -> Result<Option<Secret>, ConfigError> {
        let given = [
            self.password.is_some(),
            self.password_file.is_some(),
            self.password_env.is_some(),
        ]
        .iter()
        .filter(|g| **g)
        .count();
        if given > 1 {
            return Err(ConfigError::new(
                path,
                format!("[{section}]: set only one of password, password_file, password_env"),
            ));
        }
        if let Some(p) = self.password {
            return Ok(Some(Secret(p)));
        }
        if let Some(file) = self.password_file {
            let text = std::fs::read_to_string(&file).map_err(|e| {
                ConfigError::new(
                    path,
                    format!(
                        "[{section}] password_file {}: cannot read it ({e})",
                        file.display()
                    ),
                )
            })?;
            return Ok(Some(Secret(
                text.trim_end_matches(['\r', '\n']).to_string(),
            )));
        }
        if let Some(var) = self.password_env {
            let value = std::env::var(&var).map_err(|_| {
                ConfigError::new(
                    path,
                    format!("[{section}] password_env: the environment variable {var} is not set"),
                )
            })?;
            return Ok(Some(Secret(value)));
        }
        Ok(None)
    }
}
