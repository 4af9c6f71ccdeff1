use std::io::Read;

use axum::body::Body;
use axum::http::Request;
use tower::ServiceExt;

use super::*;

async fn get(path: &str, gzip: bool) -> Response {
    let mut request = Request::get(path);
    if gzip {
        request = request.header(header::ACCEPT_ENCODING, "br, gzip;q=0.9");
    }
    router::<()>()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

async fn body(response: Response) -> Vec<u8> {
    axum::body::to_bytes(response.into_body(), 10 << 20)
        .await
        .unwrap()
        .to_vec()
}

#[tokio::test]
async fn the_page_names_its_assets_by_content_hash_and_they_are_served() {
    let response = get("/", false).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-cache");
    assert!(response.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .contains("script-src 'self'"));
    let page = String::from_utf8(body(response).await).unwrap();
    let script = format!("{SCRIPT_ROUTE}?v={}", version(APP_JS));
    let style = format!("{STYLE_ROUTE}?v={}", version(APP_CSS));
    assert!(page.contains(&script), "{page}");
    assert!(page.contains(&style), "{page}");
    let js = get(&script, false).await;
    assert_eq!(
        js.headers()[header::CONTENT_TYPE],
        "text/javascript; charset=utf-8"
    );
    assert!(js.headers()[header::CACHE_CONTROL]
        .to_str()
        .unwrap()
        .contains("immutable"));
    assert_eq!(body(js).await, APP_JS);
    assert_eq!(body(get(&style, false).await).await, APP_CSS);
}

#[tokio::test]
async fn gzip_is_sent_only_to_browsers_that_accept_it_and_inflates_to_the_original() {
    let response = get(SCRIPT_ROUTE, true).await;
    assert_eq!(response.headers()[header::CONTENT_ENCODING], "gzip");
    let packed = body(response).await;
    assert!(packed.len() < APP_JS.len());
    let mut unpacked = Vec::new();
    flate2::read::GzDecoder::new(&packed[..])
        .read_to_end(&mut unpacked)
        .unwrap();
    assert_eq!(unpacked, APP_JS);
    let plain = get(SCRIPT_ROUTE, false).await;
    assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
}

#[test]
fn a_cold_load_stays_within_300_kb_gzipped() {
    let total: usize = sizes().iter().map(|(_, gz)| gz).sum();
    assert!(total <= 300 * 1024, "{total} bytes gzipped");
}
