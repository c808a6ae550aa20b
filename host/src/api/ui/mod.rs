//! `GET /ui/`: the dashboard, a single page whose files are compiled into
//! the binary. It reads and writes only through the JSON API on the same
//! origin, so its policy allows scripts, styles and requests to `'self'`
//! and nothing else (no inline script, no framing).

use std::fmt::Write as _;
use std::sync::LazyLock;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

/// The policy sent with every dashboard file.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// One embedded file with its validator, computed once.
struct Asset {
    content_type: &'static str,
    body: &'static [u8],
    etag: HeaderValue,
}

impl Asset {
    fn new(content_type: &'static str, body: &'static [u8]) -> Self {
        let digest = Sha256::digest(body);
        let hex = digest[..12].iter().fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        });
        let etag = HeaderValue::from_str(&format!("\"{hex}\"")).expect("hex is a valid header");
        Self {
            content_type,
            body,
            etag,
        }
    }

    /// The file, or 304 when the browser's copy is current. `no-cache`
    /// makes the browser ask each time, so a new binary's files are picked
    /// up at once while an unchanged file costs only the 304.
    fn serve(&self, headers: &HeaderMap) -> Response {
        let current = headers
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .any(|tag| tag.as_bytes() == self.etag.as_bytes() || tag == "*");
        let common = [
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::CACHE_CONTROL, "no-cache"),
        ];
        if current {
            return (
                StatusCode::NOT_MODIFIED,
                common,
                [(header::ETAG, self.etag.clone())],
            )
                .into_response();
        }
        (
            StatusCode::OK,
            common,
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(self.content_type),
                ),
                (header::ETAG, self.etag.clone()),
            ],
            self.body,
        )
            .into_response()
    }
}

static INDEX: LazyLock<Asset> =
    LazyLock::new(|| Asset::new("text/html; charset=utf-8", include_bytes!("index.html")));
static SCRIPT: LazyLock<Asset> =
    LazyLock::new(|| Asset::new("text/javascript; charset=utf-8", include_bytes!("app.js")));
static STYLE: LazyLock<Asset> =
    LazyLock::new(|| Asset::new("text/css; charset=utf-8", include_bytes!("style.css")));
static ICON: LazyLock<Asset> =
    LazyLock::new(|| Asset::new("image/svg+xml", include_bytes!("icon.svg")));

/// The dashboard's routes; they need no state.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui/", get(|h: HeaderMap| async move { INDEX.serve(&h) }))
        .route(
            "/ui/app.js",
            get(|h: HeaderMap| async move { SCRIPT.serve(&h) }),
        )
        .route(
            "/ui/style.css",
            get(|h: HeaderMap| async move { STYLE.serve(&h) }),
        )
        .route(
            "/ui/icon.svg",
            get(|h: HeaderMap| async move { ICON.serve(&h) }),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_its_own_files() {
        let html = std::str::from_utf8(INDEX.body).unwrap();
        // No inline script or style: the policy would block them.
        assert!(!html.contains("<script>"), "inline script in index.html");
        assert!(!html.contains("style="), "inline style in index.html");
        assert!(!html.contains("<style"), "inline style in index.html");
        for file in ["app.js", "style.css", "icon.svg"] {
            assert!(html.contains(file), "index.html does not load {file}");
        }
        assert!(!html.contains("http://") && !html.contains("https://"));
    }

    #[test]
    fn the_script_never_writes_html() {
        let js = std::str::from_utf8(SCRIPT.body).unwrap();
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
        ] {
            assert!(!js.contains(sink), "app.js uses {sink}");
        }
        // Only the theme is remembered; the API key stays in memory.
        for (at, _) in js.match_indices("localStorage.") {
            let rest = &js[at..];
            assert!(
                rest.starts_with("localStorage.getItem(THEME_KEY)")
                    || rest.starts_with("localStorage.setItem(THEME_KEY,"),
                "app.js stores something besides the theme: {}",
                &rest[..rest.len().min(60)]
            );
        }
    }

    #[test]
    fn an_unchanged_file_is_not_sent_again() {
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, STYLE.etag.clone());
        assert_eq!(STYLE.serve(&h).status(), StatusCode::NOT_MODIFIED);
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"other\""));
        assert_eq!(STYLE.serve(&h).status(), StatusCode::OK);
    }
}
