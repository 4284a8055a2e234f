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

    fn luminance(hex: &str) -> f64 {
        let hex = hex.trim_start_matches('#');
        let full: String = if hex.len() == 3 {
            hex.chars().flat_map(|c| [c, c]).collect()
        } else {
            hex.to_owned()
        };
        let channel = |i: usize| {
            let c = f64::from(u8::from_str_radix(&full[i..i + 2], 16).expect("hex colour")) / 255.0;
            if c <= 0.03928 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * channel(0) + 0.7152 * channel(2) + 0.0722 * channel(4)
    }

    /// WCAG AA: every sync-state badge's text on its tint reaches 4.5:1.
    #[test]
    fn badge_colours_pass_wcag_aa() {
        let css = include_str!("../../static/app.css");
        let mut checked = 0;
        for rule in css.lines().filter(|l| l.starts_with(".badge.")) {
            let colour = |prop: &str| {
                let at = rule
                    .find(&format!("{prop}: #"))
                    .unwrap_or_else(|| panic!("{prop} in {rule}"))
                    + prop.len()
                    + 2;
                rule[at..]
                    .split([';', ' '])
                    .next()
                    .expect("value")
                    .to_owned()
            };
            let (fg, bg) = (
                luminance(&colour("color")),
                luminance(&colour("background")),
            );
            let ratio = (fg.max(bg) + 0.05) / (fg.min(bg) + 0.05);
            assert!(ratio >= 4.5, "{rule}: contrast {ratio:.2}");
            checked += 1;
        }
        assert!(
            checked >= 6,
            "every state has a badge rule ({checked} found)"
        );
    }
}
