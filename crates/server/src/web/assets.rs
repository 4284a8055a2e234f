//! Static files, compiled into the binary and served under `/static/`. Each name carries a
//! version or a content hash, so browsers may cache them for a year and still never run a
//! stale copy after an upgrade; nothing is loaded from a CDN.
use crate::state::AppState;
use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

const HTMX_NAME: &str = "htmx-2.0.11.min.js";
const HTMX: &[u8] = include_bytes!("../../static/htmx-2.0.11.min.js");
const CSS: &[u8] = include_bytes!("../../static/app.css");
const JS: &[u8] = include_bytes!("../../static/app.js");

struct Asset {
    name: String,
    url: String,
    bytes: &'static [u8],
    content_type: &'static str,
}

fn hashed(stem: &str, ext: &str, bytes: &'static [u8], content_type: &'static str) -> Asset {
    let hash = hex::encode(&Sha256::digest(bytes)[..6]);
    let name = format!("{stem}.{hash}.{ext}");
    Asset {
        url: format!("/static/{name}"),
        name,
        bytes,
        content_type,
    }
}

fn all() -> &'static [Asset; 3] {
    static ASSETS: OnceLock<[Asset; 3]> = OnceLock::new();
    ASSETS.get_or_init(|| {
        [
            Asset {
                name: HTMX_NAME.to_owned(),
                url: format!("/static/{HTMX_NAME}"),
                bytes: HTMX,
                content_type: "text/javascript; charset=utf-8",
            },
            hashed("app", "css", CSS, "text/css; charset=utf-8"),
            hashed("app", "js", JS, "text/javascript; charset=utf-8"),
        ]
    })
}

pub fn htmx() -> &'static str {
    &all()[0].url
}

pub fn css() -> &'static str {
    &all()[1].url
}

pub fn js() -> &'static str {
    &all()[2].url
}

pub fn router() -> Router<AppState> {
    Router::new().route("/static/{name}", get(serve))
}

async fn serve(Path(name): Path<String>) -> Response {
    match all().iter().find(|a| a.name == name) {
        Some(a) => (
            [
                (header::CONTENT_TYPE, a.content_type),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            a.bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vendored htmx is byte for byte the npm package's file named in SHA256SUMS.
    #[test]
    fn htmx_matches_its_checksum() {
        let sums = include_str!("../../static/SHA256SUMS");
        let expected = sums
            .lines()
            .find_map(|l| l.strip_suffix(HTMX_NAME))
            .map(str::trim)
            .expect("SHA256SUMS names the htmx file");
        assert_eq!(hex::encode(Sha256::digest(HTMX)), expected);
    }

    #[test]
    fn names_carry_a_hash() {
        assert!(css().starts_with("/static/app.") && css().ends_with(".css"));
        assert_ne!(css(), "/static/app.css");
    }
}
