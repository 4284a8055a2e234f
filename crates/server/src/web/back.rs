//! Back to the page after signing in: a session that ended sends the person to the sign-in
//! page with the page they were on as `next`, and signing in goes there instead of the start
//! page. `next` comes from the request, so only a path on this site is followed: anything
//! else (`//evil.example`, `https://…`, `/\evil.example`) would make the sign-in page an open
//! redirect, and falls back to the start page.
use axum::http::request::Parts;
use axum::http::{Method, Uri, header};

/// Longer than any page's address here (a search, a filter and a page number); a longer
/// `next` is not one of ours.
const LONGEST: usize = 2000;

/// The page a request was made from, when it can be opened again with a GET: for htmx the
/// page it was sent from (`HX-Current-URL`; the request itself may be a POST-only action), for
/// a page load the page itself. A file (`/codes/1/export.csv`) is no page: signing in went on
/// to download it and left the person on the sign-in page, so its way back is the page that
/// linked to it (`Referer`, from this site only). A form posted without htmx has no page to go
/// back to.
pub(super) fn page_of(parts: &Parts, htmx: bool) -> Option<String> {
    let page = if htmx {
        path_of(parts.headers.get("hx-current-url")?.to_str().ok()?)?
    } else if parts.method != Method::GET {
        return None;
    } else if parts.uri.path().rsplit('/').next()?.contains('.') {
        let linked_from = parts.headers.get(header::REFERER)?.to_str().ok()?;
        let here = parts.headers.get(header::HOST)?.to_str().ok()?;
        let from: Uri = linked_from.parse().ok()?;
        if from.authority()?.as_str() != here {
            return None;
        }
        path_of(linked_from)?
    } else {
        parts.uri.path_and_query()?.as_str().to_owned()
    };
    local_path(&page).map(str::to_owned)
}

/// The path and query of a browser's address (`location.href`, a `Referer`), without the
/// fragment, which the browser never sends back anyway.
fn path_of(url: &str) -> Option<String> {
    let url = url.split('#').next()?;
    Some(
        url.parse::<Uri>()
            .ok()?
            .path_and_query()?
            .as_str()
            .to_owned(),
    )
}

/// `next` when it is a path on this site worth coming back to: one leading `/` (not `//` or
/// `/\`, which browsers read as another host), printable ASCII only (no backslash, control
/// character or space: a real address has them percent-encoded), and not the start or
/// sign-in page itself.
pub(super) fn local_path(next: &str) -> Option<&str> {
    let rest = next.strip_prefix('/')?;
    let ok = next.len() <= LONGEST
        && !rest.starts_with('/')
        && next.chars().all(|c| c.is_ascii_graphic() && c != '\\')
        && !rest.is_empty()
        && !rest.starts_with('?')
        && rest.split(['?', '/']).next() != Some("login");
    ok.then_some(next)
}

/// The sign-in page, asked to come back to `next` afterwards.
pub(super) fn sign_in_url(next: Option<&str>) -> String {
    match next.and_then(local_path) {
        Some(next) => {
            let q: String = form_urlencoded::Serializer::new(String::new())
                .append_pair("next", next)
                .finish();
            format!("/login?{q}")
        }
        None => "/login".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_path_here_is_followed() {
        for ok in [
            "/codes",
            "/codes?list=2&q=01-100",
            "/erp?filter=failed&page=3",
            "/a%20b",
        ] {
            assert_eq!(local_path(ok), Some(ok), "{ok}");
        }
        let long = format!("/codes?q={}", "a".repeat(LONGEST));
        for bad in [
            "",
            "/",
            "/?x=1",
            "codes",
            "//evil.example",
            "///evil.example",
            "/\\evil.example",
            "/codes\\..\\x",
            "https://evil.example",
            "javascript:alert(1)",
            "/codes\r\nX: y",
            "/codes\t",
            "/co des",
            "/café",
            "/login",
            "/login?next=/codes",
            long.as_str(),
        ] {
            assert_eq!(local_path(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_sign_in_url_carries_next_encoded() {
        assert_eq!(
            sign_in_url(Some("/codes?list=2&q=01")),
            "/login?next=%2Fcodes%3Flist%3D2%26q%3D01"
        );
        assert_eq!(sign_in_url(Some("//evil.example")), "/login");
        assert_eq!(sign_in_url(None), "/login");
    }
}
