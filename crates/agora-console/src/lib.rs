//! The console: a single-page app (explorer, playground, wallet) built from
//! `console/` with its pinned npm toolchain (`scripts/build-console.sh`)
//! into `console/dist`, whose three files are embedded here so that the
//! binary serves it with no set-up. [`router`] serves the page at `/` and
//! its script and style under `/console/`, gzip-compressed when the browser
//! accepts it, with a content hash in their URLs so they can be cached for
//! good, and a content security policy that lets the page talk to its own
//! origin only.

use std::sync::OnceLock;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// The page.
const INDEX_HTML: &str = include_str!("../../../console/dist/index.html");
/// The script.
const APP_JS: &[u8] = include_bytes!("../../../console/dist/app.js");
/// The style.
const APP_CSS: &[u8] = include_bytes!("../../../console/dist/app.css");

/// Where the script is served (the page names it; a `?v=` hash is appended).
pub const SCRIPT_ROUTE: &str = "/console/app.js";
/// Where the style is served.
pub const STYLE_ROUTE: &str = "/console/app.css";

/// What the page may load and talk to: its own origin only (charts and
/// icons may be data URIs). A page holding a wallet key never runs script
/// from elsewhere, and no other site may frame it.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// One file ready to serve: its bytes, gzipped bytes and content type.
struct Asset {
    plain: Vec<u8>,
    gzipped: Vec<u8>,
    content_type: &'static str,
    immutable: bool,
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

impl Asset {
    fn new(plain: Vec<u8>, content_type: &'static str, immutable: bool) -> Self {
        Asset {
            gzipped: gzip(&plain),
            plain,
            content_type,
            immutable,
        }
    }

    fn respond(&self, headers: &HeaderMap) -> Response {
        let gzip_ok = headers
            .get_all(header::ACCEPT_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
        let cache = if self.immutable {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        let mut response = if gzip_ok {
            let mut r = self.gzipped.clone().into_response();
            r.headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            r
        } else {
            self.plain.clone().into_response()
        };
        let h = response.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        (StatusCode::OK, response).into_response()
    }
}

/// The first 16 hex digits of the BLAKE3 of `bytes`: a cache-busting version.
fn version(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex()[..16].to_string()
}

/// The page, its script and its style, built once.
struct Assets {
    index: Asset,
    script: Asset,
    style: Asset,
}

fn assets() -> &'static Assets {
    static ASSETS: OnceLock<Assets> = OnceLock::new();
    ASSETS.get_or_init(|| {
        let index = INDEX_HTML
            .replace(
                SCRIPT_ROUTE,
                &format!("{SCRIPT_ROUTE}?v={}", version(APP_JS)),
            )
            .replace(
                STYLE_ROUTE,
                &format!("{STYLE_ROUTE}?v={}", version(APP_CSS)),
            );
        Assets {
            index: Asset::new(index.into_bytes(), "text/html; charset=utf-8", false),
            script: Asset::new(APP_JS.to_vec(), "text/javascript; charset=utf-8", true),
            style: Asset::new(APP_CSS.to_vec(), "text/css; charset=utf-8", true),
        }
    })
}

/// The console's routes: `/` and its two assets.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/",
            get(|h: HeaderMap| async move { assets().index.respond(&h) }),
        )
        .route(
            SCRIPT_ROUTE,
            get(|h: HeaderMap| async move { assets().script.respond(&h) }),
        )
        .route(
            STYLE_ROUTE,
            get(|h: HeaderMap| async move { assets().style.respond(&h) }),
        )
}

/// Bytes of the page, script and style, and of their gzipped forms: what
/// a cold load transfers.
pub fn sizes() -> [(usize, usize); 3] {
    let a = assets();
    [&a.index, &a.script, &a.style].map(|x| (x.plain.len(), x.gzipped.len()))
}

#[cfg(test)]
mod tests;
