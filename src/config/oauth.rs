//! `[imap.oauth2]` and `[smtp.oauth2]`: where a mailbox gets its OAuth2
//! access tokens (Microsoft 365, Google Workspace or any token endpoint),
//! with which grant, and the client's secret read from the file or the
//! environment like every other secret.
//!
//! Only reads and checks the configuration; [`crate::oauth`] talks to the
//! token endpoint.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{ConfigError, Secret};

/// How a mailbox or the SMTP server is logged in to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMethod {
    /// `password`, `password_file` or `password_env` (SASL PLAIN/LOGIN).
    #[default]
    Password,
    /// An OAuth2 access token (SASL XOAUTH2, or OAUTHBEARER where offered).
    Oauth2,
}

/// How access tokens are obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grant {
    /// The application's own identity (Microsoft 365 app-only access):
    /// client id and secret, nobody signs in.
    ClientCredentials,
    /// A refresh token stored by `servicedesk oauth login` (Google, or
    /// delegated Microsoft access): someone signs in once.
    RefreshToken,
}

impl Grant {
    pub fn as_str(self) -> &'static str {
        match self {
            Grant::ClientCredentials => "client_credentials",
            Grant::RefreshToken => "refresh_token",
        }
    }
}

/// Well-known identity providers, whose endpoints need not be written out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Microsoft,
    Google,
}

/// One section's OAuth2 token source, checked.
#[derive(Clone)]
pub struct OAuth2Config {
    /// `imap`, `imap.2`, ... or `smtp`: what `servicedesk oauth login`
    /// takes and what logs and metrics name.
    pub section: String,
    /// The mail account the token is for (the SASL user).
    pub username: String,
    pub token_url: String,
    /// The device authorization endpoint (RFC 8628) of `oauth login`.
    pub device_url: Option<String>,
    /// The authorization endpoint of `oauth login --browser` (the
    /// authorization code with PKCE, answered on a loopback address).
    pub auth_url: Option<String>,
    pub client_id: String,
    pub client_secret: Option<Secret>,
    /// Instead of a secret: a certificate registered with the application
    /// and its private key, which sign the client assertion (Microsoft 365).
    pub certificate: Option<std::sync::Arc<ClientCertificate>>,
    pub scope: String,
    pub grant: Grant,
    /// An extra root certificate (PEM) for the token endpoint.
    pub ca_file: Option<PathBuf>,
}

/// How people find a section's oauth2 table in the file: `[imap.oauth2]`,
/// `[smtp.oauth2]`, or for a further mailbox `[imap.oauth2] of the 2nd
/// [[imap]]`.
pub fn table_of(section: &str) -> String {
    match section.split_once('.') {
        Some((kind, n)) => format!("[{kind}.oauth2] of [[{kind}]] number {n}"),
        None => format!("[{section}.oauth2]"),
    }
}

impl OAuth2Config {
    /// [`table_of`] this section.
    pub fn table(&self) -> String {
        table_of(&self.section)
    }

    /// Under which name the refresh token is stored: the client and the
    /// account, so `[imap]` and `[smtp]` of one account share one sign-in.
    pub fn stored_as(&self) -> String {
        format!("{} {}", self.client_id, self.username)
    }
}

impl fmt::Debug for OAuth2Config {
    // By hand: the client secret stays out of every log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuth2Config")
            .field("section", &self.section)
            .field("username", &self.username)
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("scope", &self.scope)
            .field("grant", &self.grant)
            .finish_non_exhaustive()
    }
}

/// A client certificate: its thumbprint and the RSA key that signs.
pub struct ClientCertificate {
    /// base64url of the SHA-1 of the certificate's DER (the JWT `x5t`).
    pub x5t: String,
    pub key: ring::signature::RsaKeyPair,
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("x5t", &self.x5t)
            .finish_non_exhaustive()
    }
}

/// Reads `certificate_file` (PEM) and `private_key_file` (PEM, PKCS#8 or
/// PKCS#1 RSA).
fn client_certificate(
    cert_file: &Path,
    key_file: &Path,
    err: impl Fn(String) -> ConfigError,
) -> Result<ClientCertificate, ConfigError> {
    use base64::Engine;
    let read = |f: &Path, what: &str| {
        std::fs::read(f).map_err(|e| err(format!("{what} {}: cannot read it ({e})", f.display())))
    };
    let pem = read(cert_file, "certificate_file")?;
    let der = rustls_pemfile::certs(&mut pem.as_slice())
        .next()
        .and_then(Result::ok)
        .ok_or_else(|| {
            err(format!(
                "certificate_file {}: no PEM certificate (-----BEGIN CERTIFICATE-----) in it",
                cert_file.display()
            ))
        })?;
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, der.as_ref());
    let x5t = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref());
    let pem = read(key_file, "private_key_file")?;
    let bad = |why: &str| {
        err(format!(
            "private_key_file {}: {why} (an RSA key in PEM, e.g. from `openssl genrsa`)",
            key_file.display()
        ))
    };
    let key = match rustls_pemfile::private_key(&mut pem.as_slice()) {
        Ok(Some(rustls::pki_types::PrivateKeyDer::Pkcs8(k))) => {
            ring::signature::RsaKeyPair::from_pkcs8(k.secret_pkcs8_der())
        }
        Ok(Some(rustls::pki_types::PrivateKeyDer::Pkcs1(k))) => {
            ring::signature::RsaKeyPair::from_der(k.secret_pkcs1_der())
        }
        Ok(Some(_)) => return Err(bad("not an RSA key")),
        Ok(None) | Err(_) => return Err(bad("no PEM private key in it")),
    }
    .map_err(|e| bad(&format!("not usable: {e}")))?;
    Ok(ClientCertificate { x5t, key })
}

/// `[imap.oauth2]` / `[smtp.oauth2]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOAuth2 {
    #[serde(default)]
    provider: Option<Provider>,
    /// Microsoft: the directory (tenant) id or domain.
    #[serde(default)]
    tenant: Option<String>,
    #[serde(default)]
    token_url: Option<String>,
    #[serde(default)]
    device_url: Option<String>,
    #[serde(default)]
    auth_url: Option<String>,
    client_id: String,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    client_secret_file: Option<PathBuf>,
    #[serde(default)]
    client_secret_env: Option<String>,
    #[serde(default)]
    certificate_file: Option<PathBuf>,
    #[serde(default)]
    private_key_file: Option<PathBuf>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    grant: Option<Grant>,
    #[serde(default)]
    ca_file: Option<PathBuf>,
}

/// An `https://` address, or `http://` to this machine only (a local
/// token server): secrets, codes and tokens never cross a network in
/// clear text.
fn http_url(u: &str) -> bool {
    if u.contains(char::is_whitespace) {
        return false;
    }
    if u.starts_with("https://") {
        return true;
    }
    let Some(rest) = u.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return false;
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    };
    matches!(host, "127.0.0.1" | "::1" | "localhost")
}

impl RawOAuth2 {
    /// Checks the table of section `section` for account `username`.
    pub(super) fn validate(
        self,
        path: &Path,
        section: &str,
        username: &str,
    ) -> Result<OAuth2Config, ConfigError> {
        let at = table_of(section);
        let err = |m: String| ConfigError::new(path, format!("{at}: {m}"));
        let grant = self.grant.unwrap_or(match self.provider {
            Some(Provider::Google) => Grant::RefreshToken,
            _ => Grant::ClientCredentials,
        });
        let tenant = self
            .tenant
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty());
        if tenant.is_some() && self.provider != Some(Provider::Microsoft) {
            return Err(err("tenant is for provider = \"microsoft\"".into()));
        }
        let microsoft = |end: &str| {
            tenant.map(|t| format!("https://login.microsoftonline.com/{t}/oauth2/v2.0/{end}"))
        };
        let token_url = match (&self.token_url, self.provider) {
            (Some(u), _) => u.trim().to_string(),
            (None, Some(Provider::Google)) => "https://oauth2.googleapis.com/token".into(),
            (None, Some(Provider::Microsoft)) => microsoft("token").ok_or_else(|| {
                err("provider = \"microsoft\" needs tenant (the directory id or domain, e.g. \"contoso.onmicrosoft.com\")".into())
            })?,
            (None, None) => {
                return Err(err(
                    "set token_url, or provider = \"microsoft\" with tenant, or provider = \"google\""
                        .into(),
                ))
            }
        };
        if !http_url(&token_url) {
            return Err(err(format!(
                "token_url = {token_url:?} must be an https:// address (http:// only to 127.0.0.1, [::1] or localhost)"
            )));
        }
        // Google's device flow does not grant the mail scope: its sign-in
        // goes through the browser.
        let device_url = match (&self.device_url, self.provider) {
            (Some(u), _) => Some(u.trim().to_string()),
            (None, Some(Provider::Microsoft)) => microsoft("devicecode"),
            (None, _) => None,
        };
        let auth_url = match (&self.auth_url, self.provider) {
            (Some(u), _) => Some(u.trim().to_string()),
            (None, Some(Provider::Google)) => {
                Some("https://accounts.google.com/o/oauth2/v2/auth".into())
            }
            (None, Some(Provider::Microsoft)) => microsoft("authorize"),
            (None, None) => None,
        };
        for (key, url) in [("device_url", &device_url), ("auth_url", &auth_url)] {
            if let Some(u) = url {
                if !http_url(u) {
                    return Err(err(format!("{key} = {u:?} must be an https:// address (http:// only to 127.0.0.1, [::1] or localhost)")));
                }
            }
        }
        let client_id = self.client_id.trim().to_string();
        if client_id.is_empty() {
            return Err(err("client_id is empty".into()));
        }
        let client_secret = match (
            self.client_secret,
            self.client_secret_file,
            self.client_secret_env,
        ) {
            (None, None, None) => None,
            (Some(s), None, None) => Some(s),
            (None, Some(f), None) => Some(
                std::fs::read_to_string(&f)
                    .map(|t| t.trim_end_matches(['\r', '\n']).to_string())
                    .map_err(|e| {
                        err(format!(
                            "client_secret_file {}: cannot read it ({e})",
                            f.display()
                        ))
                    })?,
            ),
            (None, None, Some(var)) => Some(std::env::var(&var).map_err(|_| {
                err(format!(
                    "client_secret_env: the environment variable {var} is not set"
                ))
            })?),
            _ => {
                return Err(err(
                    "set only one of client_secret, client_secret_file, client_secret_env".into(),
                ))
            }
        }
        .map(Secret::new);
        let certificate = match (&self.certificate_file, &self.private_key_file) {
            (None, None) => None,
            (Some(c), Some(k)) => Some(std::sync::Arc::new(client_certificate(c, k, err)?)),
            _ => {
                return Err(err(
                    "certificate_file and private_key_file go together".into()
                ))
            }
        };
        if certificate.is_some() && client_secret.is_some() {
            return Err(err(
                "set either a client secret or a certificate, not both".into()
            ));
        }
        if grant == Grant::ClientCredentials && client_secret.is_none() && certificate.is_none() {
            return Err(err(
                "grant = \"client_credentials\" needs the application's secret or certificate: set client_secret_file (or client_secret_env), or certificate_file and private_key_file"
                    .into(),
            ));
        }
        let scope = match (self.scope, self.provider, grant) {
            (Some(s), _, _) => s.split_whitespace().collect::<Vec<_>>().join(" "),
            (None, Some(Provider::Google), _) => "https://mail.google.com/".into(),
            (None, Some(Provider::Microsoft), Grant::ClientCredentials) => {
                "https://outlook.office365.com/.default".into()
            }
            (None, Some(Provider::Microsoft), Grant::RefreshToken) => {
                "offline_access https://outlook.office.com/IMAP.AccessAsUser.All https://outlook.office.com/SMTP.Send".into()
            }
            (None, None, _) => String::new(),
        };
        if scope.is_empty() {
            return Err(err(
                "set scope (the token endpoint's name for mail access)".into()
            ));
        }
        Ok(OAuth2Config {
            section: section.to_string(),
            username: username.to_string(),
            token_url,
            device_url,
            auth_url,
            client_id,
            client_secret,
            certificate,
            scope,
            grant,
            ca_file: self.ca_file,
        })
    }
}

/// Checks that `auth` and the presence of the oauth2 table agree, and that
/// a password is given only for password logins.
pub(super) fn check_method(
    path: &Path,
    section: &str,
    auth: AuthMethod,
    has_table: bool,
    has_password: bool,
) -> Result<(), ConfigError> {
    let fail = |m: &str| Err(ConfigError::new(path, format!("[{section}]: {m}")));
    match (auth, has_table, has_password) {
        (AuthMethod::Oauth2, false, _) => fail(&format!(
            "auth = \"oauth2\" needs a {} table (provider, tenant, client_id, ...)",
            table_of(section)
        )),
        (AuthMethod::Oauth2, true, true) => fail(
            "auth = \"oauth2\" logs in with tokens: remove password, password_file or password_env",
        ),
        (AuthMethod::Password, true, _) => fail(&format!(
            "a {} table is set: add auth = \"oauth2\" to use it",
            table_of(section)
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, Grant};
    use std::path::Path;

    const MINIMAL: &str =
        "[database]\nurl = \"sqlite://x.db\"\n[support]\naddress = \"support@example.test\"\n";

    fn parse(extra: &str) -> Result<Config, String> {
        Config::parse(Path::new("x.toml"), &format!("{MINIMAL}{extra}")).map_err(|e| e.to_string())
    }

    #[test]
    fn token_servers_are_https_or_this_machine() {
        for ok in [
            "https://login.example.test/token",
            "http://127.0.0.1:8123/token",
            "http://localhost/token",
            "http://[::1]:80/token",
        ] {
            assert!(super::http_url(ok), "{ok}");
        }
        for bad in [
            "http://login.example.test/token",
            "http://127.0.0.1.evil.test/token",
            "http://localhost@evil.test/token",
            "http://10.0.0.1/token",
            "ftp://127.0.0.1/token",
            "https://x.test/a b",
        ] {
            assert!(!super::http_url(bad), "{bad}");
        }
    }

    #[test]
    fn microsoft_app_only_needs_only_tenant_client_and_secret() {
        std::env::set_var("SD_TEST_OAUTH_SECRET", "s3cret-value");
        let c = parse(
            "[imap]\nhost = \"outlook.office365.com\"\nusername = \"support@contoso.example\"\nauth = \"oauth2\"\n\
             [imap.oauth2]\nprovider = \"microsoft\"\ntenant = \"contoso.onmicrosoft.com\"\nclient_id = \"abc\"\nclient_secret_env = \"SD_TEST_OAUTH_SECRET\"\n",
        )
        .unwrap();
        let o = c.imap[0].oauth2.as_ref().unwrap();
        assert_eq!(
            o.token_url,
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
        assert_eq!(o.scope, "https://outlook.office365.com/.default");
        assert_eq!(o.grant, Grant::ClientCredentials);
        assert_eq!(o.section, "imap");
        assert_eq!(o.table(), "[imap.oauth2]");
        assert_eq!(
            super::table_of("imap.2"),
            "[imap.oauth2] of [[imap]] number 2"
        );
        assert!(!format!("{c:?}").contains("s3cret-value"));
    }

    #[test]
    fn google_defaults_to_a_refresh_token_and_mail_scope() {
        let c = parse(
            "[smtp]\nhost = \"smtp.gmail.com\"\nusername = \"support@example.test\"\nfrom = \"Desk <support@example.test>\"\nauth = \"oauth2\"\n\
             [smtp.oauth2]\nprovider = \"google\"\nclient_id = \"g\"\nclient_secret = \"gs\"\n",
        )
        .unwrap();
        let s = c.smtp.unwrap();
        let o = s.oauth2.unwrap();
        assert_eq!(o.grant, Grant::RefreshToken);
        assert_eq!(o.scope, "https://mail.google.com/");
        assert_eq!(o.device_url, None);
        assert_eq!(
            o.auth_url.as_deref(),
            Some("https://accounts.google.com/o/oauth2/v2/auth")
        );
        assert!(s.credentials.is_none());
    }

    #[test]
    fn mistakes_are_named_with_the_fix() {
        let imap = |auth: &str, table: &str| {
            format!("[imap]\nhost = \"h\"\nusername = \"u@example.test\"\n{auth}{table}")
        };
        for (text, want) in [
            (imap("auth = \"oauth2\"\n", ""), "needs a [imap.oauth2] table"),
            (
                imap("", "[imap.oauth2]\ntoken_url = \"https://t\"\nclient_id = \"c\"\nclient_secret = \"s\"\nscope = \"x\"\n"),
                "add auth = \"oauth2\"",
            ),
            (
                imap("auth = \"oauth2\"\npassword = \"p\"\n", "[imap.oauth2]\ntoken_url = \"https://t\"\nclient_id = \"c\"\nclient_secret = \"s\"\nscope = \"x\"\n"),
                "remove password",
            ),
            (
                imap("auth = \"oauth2\"\n", "[imap.oauth2]\nprovider = \"microsoft\"\nclient_id = \"c\"\nclient_secret = \"s\"\n"),
                "needs tenant",
            ),
            (
                imap("auth = \"oauth2\"\n", "[imap.oauth2]\nprovider = \"microsoft\"\ntenant = \"t\"\nclient_id = \"c\"\n"),
                "client_secret_file",
            ),
            (
                imap("auth = \"oauth2\"\n", "[imap.oauth2]\nclient_id = \"c\"\nclient_secret = \"s\"\n"),
                "set token_url",
            ),
        ] {
            let e = parse(&text).unwrap_err();
            assert!(e.contains(want), "{e}\n{text}");
        }
    }

    #[test]
    fn metrics_on_the_workspace_need_a_bearer_token() {
        let c = parse("[metrics]\non_web = true\ntoken = \"0123456789abcdef\"\n").unwrap();
        assert_eq!(
            c.metrics.web_token.as_ref().map(|t| t.expose()),
            Some("0123456789abcdef")
        );
        assert!(!format!("{c:?}").contains("0123456789abcdef"));
        assert!(parse("").unwrap().metrics.web_token.is_none());
        for (text, want) in [
            ("[metrics]\non_web = true\n", "needs a bearer token"),
            (
                "[metrics]\ntoken = \"0123456789abcdef\"\n",
                "add on_web = true",
            ),
            (
                "[metrics]\non_web = true\ntoken = \"short\"\n",
                "at least 16",
            ),
            (
                "[metrics]\non_web = true\ntoken_env = \"SD_TEST_NO_SUCH_VAR\"\n",
                "SD_TEST_NO_SUCH_VAR is not set",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(want), "{e}");
        }
    }
}
