//! Whether the receiving mail server vouched for the sender: an
//! `Authentication-Results` header (RFC 8601) from our own server (its
//! authserv-id) showing `dmarc=pass`, or `dkim=pass` for a domain aligned with
//! the `From` domain. Headers from any other authserv-id are ignored: anyone
//! can write one.

/// One `method=result` with its properties, e.g. `dkim=pass header.d=x.example`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ResInfo {
    method: String,
    result: String,
    props: Vec<(String, String)>,
}

/// Drops `(comments)`, which may contain `;` and `=`.
fn strip_comments(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut depth = 0usize;
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// The authserv-id and the results of one header value.
fn parse(value: &str) -> (String, Vec<ResInfo>) {
    let clean = strip_comments(value);
    let mut parts = clean.split(';');
    let id = parts
        .next()
        .and_then(|p| p.split_whitespace().next())
        .unwrap_or("")
        .to_ascii_lowercase();
    let results = parts
        .filter_map(|part| {
            let mut tokens = part.split_whitespace();
            let (method, result) = tokens.next()?.split_once('=')?;
            let props = tokens
                .filter_map(|t| t.split_once('='))
                .map(|(k, v)| {
                    (
                        k.to_ascii_lowercase(),
                        v.trim_matches('"').to_ascii_lowercase(),
                    )
                })
                .collect();
            Some(ResInfo {
                method: method.to_ascii_lowercase(),
                result: result.to_ascii_lowercase(),
                props,
            })
        })
        .collect();
    (id, results)
}

/// Relaxed alignment (RFC 7489): the same organisational domain, approximated
/// as one domain equal to or a subdomain of the other.
fn aligned_domain(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim_end_matches('.'), b.trim_end_matches('.'));
    !a.is_empty()
        && !b.is_empty()
        && (a == b || a.ends_with(&format!(".{b}")) || b.ends_with(&format!(".{a}")))
}

/// True when a header from `authserv_id` shows DMARC passing, or DKIM passing
/// for a domain aligned with `from_domain`.
pub fn vouched(headers: &[String], authserv_id: &str, from_domain: &str) -> bool {
    let from_domain = from_domain.to_ascii_lowercase();
    headers.iter().any(|h| {
        let (id, results) = parse(h);
        id == authserv_id.to_ascii_lowercase()
            && results.iter().any(|r| {
                r.result == "pass"
                    && (r.method == "dmarc"
                        || (r.method == "dkim"
                            && r.props
                                .iter()
                                .any(|(k, v)| k == "header.d" && aligned_domain(v, &from_domain))))
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MX: &str = "mx.example.test";

    #[test]
    fn dmarc_pass_from_our_server() {
        let h = vec!["mx.example.test; spf=pass smtp.mailfrom=terbeke.example; dmarc=pass (p=reject; dis=none) header.from=terbeke.example".to_string()];
        assert!(vouched(&h, MX, "terbeke.example"));
    }

    #[test]
    fn aligned_dkim_passes_unaligned_does_not() {
        let ok = vec![
            "mx.example.test; dkim=pass header.d=mail.terbeke.example header.s=s1".to_string(),
        ];
        assert!(vouched(&ok, MX, "terbeke.example"));
        let other = vec!["mx.example.test; dkim=pass header.d=bulkmailer.example".to_string()];
        assert!(!vouched(&other, MX, "terbeke.example"));
    }

    #[test]
    fn foreign_authserv_id_and_failures_are_ignored() {
        let forged = vec!["attacker.example; dmarc=pass header.from=terbeke.example".to_string()];
        assert!(!vouched(&forged, MX, "terbeke.example"));
        let failed =
            vec!["mx.example.test; dkim=fail header.d=terbeke.example; dmarc=fail".to_string()];
        assert!(!vouched(&failed, MX, "terbeke.example"));
        assert!(!vouched(&[], MX, "terbeke.example"));
    }
}
