//! Addresses as people other than their owner see them.

/// An address as a reader sees it: its scheme and host only (`https://hooks.example/…`). Many
/// hook addresses carry their credential in the path or query (chat and automation services),
/// and the audit log and the connection's summary are open to read-only users. User-info
/// (`user:pass@`) is dropped with the rest.
pub fn host_only(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let host = &rest[..end];
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let more = if end < rest.len() { "/…" } else { "" };
    format!("{scheme}://{host}{more}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_scheme_and_host_are_shown() {
        assert_eq!(
            host_only("https://hooks.zapier.com/hooks/catch/123/abc?x=1"),
            "https://hooks.zapier.com/…"
        );
        assert_eq!(
            host_only("http://erp.example:8000"),
            "http://erp.example:8000"
        );
        assert_eq!(
            host_only("https://h.example?token=x"),
            "https://h.example/…"
        );
        assert_eq!(
            host_only("https://user:pass@erp.example/rpc"),
            "https://erp.example/…"
        );
    }
}
