//! Browser sessions: the cookie, its rotation at sign-in, and the CSRF rule every unsafe
//! cookie request passes (the web UI's forms and htmx calls, and the JSON API used by cookie).
use crate::password::{self, hash_token};
use crate::state::AppState;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use costbridge_storage::StoreError;

pub const COOKIE: &str = "costbridge_session";
/// Header the pages' htmx requests carry (set once on `<body hx-headers>`).
pub const CSRF_HEADER: &str = "x-csrf-token";
/// A working day and then some; signing in again after that is cheap and limits a stolen id.
const TTL_HOURS: i64 = 12;

/// A fresh session: the cookie value to set and the CSRF token for its pages.
pub struct NewSession {
    pub cookie: HeaderValue,
    pub csrf_token: String,
}

/// Starts a session for `user_id`. The id is new on every sign-in (never reused from the
/// request), so a session id planted before sign-in is worthless after it. `None` when the
/// user's password is no longer `password_hash`, the one the sign-in verified.
pub async fn start(
    state: &AppState, user_id: i64, password_hash: Option<&str>,
) -> Result<Option<NewSession>, StoreError> {
    let id = password::new_token();
    let csrf_token = password::new_token();
    let stored = state
        .db
        .create_session(
            &hash_token(&id),
            user_id,
            &csrf_token,
            time::Duration::hours(TTL_HOURS),
            password_hash,
        )
        .await?;
    if !stored {
        return Ok(None);
    }
    let cookie = format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
        TTL_HOURS * 3600,
        secure(state)
    );
    Ok(Some(NewSession {
        cookie: HeaderValue::from_str(&cookie).expect("hex token is a valid header"),
        csrf_token,
    }))
}

/// The `Set-Cookie` value that makes the browser forget the session.
pub fn clear_cookie(state: &AppState) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{}",
        secure(state)
    ))
    .expect("a valid header")
}

/// Served over https (as `base_url` says), the cookie must never travel over plain http.
fn secure(state: &AppState) -> &'static str {
    match state.base_url.starts_with("https://") {
        true => "; Secure",
        false => "",
    }
}

/// The session id from the `Cookie` header, if any.
pub fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty())
}

pub fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether the browser says the request came from another site. Requests without these
/// headers (curl, scripts) are not from a browser page, so they cannot be forged by one.
pub fn cross_site(headers: &HeaderMap) -> bool {
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if let Some(site) = fetch_site {
        return !matches!(site, "same-origin" | "none");
    }
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        Some(origin) => !same_host(origin, headers),
        None => false,
    }
}

fn same_host(origin: &str, headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin.split_once("://").map(|(_, h)| h);
    matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

/// The CSRF rule for a cookie-authenticated unsafe request: the session's token in the
/// `X-CSRF-Token` header, or a browser saying the request is same-origin.
pub fn csrf_ok(headers: &HeaderMap, csrf_token: &str) -> bool {
    let token = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
    if let Some(t) = token {
        return constant_time_eq(t.as_bytes(), csrf_token.as_bytes());
    }
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    fetch_site == Some("same-origin") || origin.is_some_and(|o| same_host(o, headers))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn reads_the_session_cookie_among_others() {
        let h = headers(&[("cookie", "a=1; costbridge_session=abc ; b=2")]);
        assert_eq!(cookie(&h), Some("abc"));
        assert_eq!(cookie(&headers(&[("cookie", "costbridge_session=")])), None);
    }

    #[test]
    fn csrf_needs_the_token_or_same_origin() {
        let host = ("host", "127.0.0.1:8080");
        assert!(csrf_ok(&headers(&[("x-csrf-token", "t0k")]), "t0k"));
        assert!(!csrf_ok(&headers(&[("x-csrf-token", "bad")]), "t0k"));
        assert!(csrf_ok(
            &headers(&[("sec-fetch-site", "same-origin")]),
            "t0k"
        ));
        assert!(csrf_ok(
            &headers(&[host, ("origin", "http://127.0.0.1:8080")]),
            "t0k"
        ));
        assert!(!csrf_ok(
            &headers(&[host, ("origin", "http://evil.example")]),
            "t0k"
        ));
        assert!(!csrf_ok(
            &headers(&[("sec-fetch-site", "cross-site")]),
            "t0k"
        ));
        assert!(!csrf_ok(&headers(&[]), "t0k"));
    }

    #[test]
    fn cross_site_is_what_the_browser_says() {
        assert!(cross_site(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(!cross_site(&headers(&[("sec-fetch-site", "same-origin")])));
        assert!(cross_site(&headers(&[
            ("host", "a.example"),
            ("origin", "https://b.example")
        ])));
        assert!(!cross_site(&headers(&[])));
    }
}
