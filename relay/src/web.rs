//! The built web client at `/`: precompressed copies (`.br`, `.gz`, made by
//! `web/build.sh`) sent by `Accept-Encoding`, content-hashed files cached for
//! good, everything else revalidated, no dotfiles and nothing outside the
//! directory (tower-http's `ServeDir`).

use std::path::PathBuf;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use tower_http::services::ServeDir;

/// The files of `dir`, served once it exists.
pub fn files(dir: PathBuf) -> Router {
    let serve = ServeDir::new(dir)
        .precompressed_br()
        .precompressed_gzip()
        .append_index_html_on_directories(true);
    Router::new()
        .fallback_service(serve)
        .layer(axum::middleware::from_fn(cache_headers))
}

/// `hush-0123456789abcdef.js`, `hush_bg-0123456789abcdef.wasm`: named by
/// their content, so a new build has new names.
pub fn is_content_hashed(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    let stem = name.split('.').next().unwrap_or(name);
    stem.rsplit_once('-').is_some_and(|(_, h)| {
        h.len() == 16
            && h.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    })
}

async fn cache_headers(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let dotfile = path.split('/').any(|seg| seg.starts_with('.'));
    if dotfile {
        return Response::builder()
            .status(404)
            .body(axum::body::Body::empty())
            .expect("a static response");
    }
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    let cache = if is_content_hashed(&path) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.entry(header::VARY)
        .or_insert(HeaderValue::from_static("accept-encoding"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_content_hashed_names_are_cached_for_good() {
        assert!(is_content_hashed("/hush-0123456789abcdef.js"));
        assert!(is_content_hashed("/hush_bg-0123456789abcdef.wasm"));
        assert!(!is_content_hashed("/index.html"));
        assert!(!is_content_hashed("/"));
        assert!(!is_content_hashed("/hush.js"));
        assert!(!is_content_hashed("/hush-0123.js"));
        assert!(!is_content_hashed("/hush-0123456789ABCDEF.js"));
    }
}
