//! Files for browsers: the viewer at `/`, its static files at `/web/...`, the API docs page at
//! `/docs`, and MapLibre styles at `/styles/{name}.json`.
//!
//! Only two folders are read: `web_dir` and `styles_dir` of the configuration. Static files go
//! through `tower-http`'s `ServeDir`, which refuses `..` and encoded escapes; a style name must
//! be a plain identifier before it becomes a file name. HTML answers carry the security headers.

use crate::app::{AppState, GET, RouteEntry, route, route_service};
use crate::error::{AppError, AppResult};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, Request, State};
use axum::handler::HandlerWithoutStateExt;
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

/// The Content-Security-Policy of the HTML pages: everything from this server; MapLibre needs
/// blob workers and inline style attributes.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data: blob:; \
     worker-src 'self' blob:; child-src blob:; style-src 'self' 'unsafe-inline'; \
     connect-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'";

/// The browser routes, with the static folder of this configuration.
pub fn route_table(state: &AppState) -> Vec<RouteEntry> {
    let files = ServeDir::new(&state.config.web_dir)
        .append_index_html_on_directories(false)
        .not_found_service(file_not_found.into_service());
    let files = tower::ServiceBuilder::new()
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(axum::middleware::from_fn(strip_web_prefix))
        .layer(axum::middleware::from_fn(plausible_file_path))
        .service(files);
    vec![
        route("/", GET, index),
        route("/docs", GET, docs),
        route("/styles/{name}", GET, style),
        route_service("/web/{*path}", GET, files),
    ]
}

/// Takes `/web` off the path, so the file service looks the rest up in the web folder.
async fn strip_web_prefix(mut request: Request, next: Next) -> Response {
    let uri = request.uri();
    let Some(rest) = uri.path().strip_prefix("/web") else {
        return file_not_found().await.into_response();
    };
    let path_and_query = match uri.query() {
        Some(q) => format!("{rest}?{q}"),
        None => rest.to_string(),
    };
    let mut parts = uri.clone().into_parts();
    // The rest of a path that parsed parses too; anything else is no file.
    let Ok(path_and_query) = path_and_query.parse() else {
        return file_not_found().await.into_response();
    };
    parts.path_and_query = Some(path_and_query);
    let Ok(uri) = Uri::from_parts(parts) else {
        return file_not_found().await.into_response();
    };
    *request.uri_mut() = uri;
    next.run(request).await
}

async fn file_not_found() -> AppError {
    AppError::not_found("no such file")
}

/// Longest `/web/...` path looked up on disk, and longest name in it: the folder holds nothing
/// longer, and the file system refuses longer names with an error (`ENAMETOOLONG`) that
/// `ServeDir` would report as a 500.
const MAX_FILE_PATH: usize = 1024;
const MAX_FILE_NAME: usize = 255;

/// Answers 404 for a path no file of the web folder can have, before the file system is asked.
async fn plausible_file_path(request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if path.len() > MAX_FILE_PATH || path.split('/').any(|name| name.len() > MAX_FILE_NAME) {
        return file_not_found().await.into_response();
    }
    next.run(request).await
}

/// `GET /`: the viewer for browsers, the OGC API - Features landing page for JSON clients.
async fn index(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> AppResult<Response> {
    // `f=json` asks for the OGC API landing page instead of the viewer.
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.as_deref().unwrap_or(""))
        .map_err(|e| AppError::bad(format!("malformed query string: {e}")))?;
    if let Some((k, _)) = pairs.iter().find(|(k, _)| k != "f") {
        return Err(AppError::bad(format!(
            "unknown query parameter {:?}; only f is accepted here",
            crate::app::truncate(k, 32)
        )));
    }
    if pairs.len() > 1 {
        return Err(AppError::bad("f is given more than once"));
    }
    let json = match pairs.first().map(|(_, v)| v.as_str()) {
        Some("json") => true,
        Some("html") => false,
        Some(other) => {
            return Err(AppError::bad(format!(
                "f must be json or html; got {:?}",
                crate::app::truncate(other, 16)
            )));
        }
        None => prefers_json(&headers),
    };
    if json {
        return Ok(crate::features::ogc::landing(&state, &headers));
    }
    html_page(&state, "index.html").await
}

/// `GET /docs`: interactive API documentation over `/api/openapi.json`.
async fn docs(State(state): State<AppState>) -> AppResult<Response> {
    html_page(&state, "docs.html").await
}

/// Whether the `Accept` header ranks JSON above HTML (GDAL, curl -H, scripts).
fn prefers_json(headers: &HeaderMap) -> bool {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let html = accept.contains("text/html");
    let json = accept.contains("application/json") || accept.contains("application/geo+json");
    json && !html
}

/// The pages' policy; a `GLYPHS_URL` on another host is added to `connect-src`, so the viewer
/// may fetch its labels' glyphs there.
pub fn content_security_policy(glyphs_url: Option<&str>) -> HeaderValue {
    let origin = glyphs_url
        .and_then(|g| g.parse::<Uri>().ok())
        .and_then(|u| Some(format!("{}://{}", u.scheme_str()?, u.authority()?)));
    match origin {
        Some(o) => HeaderValue::from_str(
            &CONTENT_SECURITY_POLICY
                .replace("connect-src 'self'", &format!("connect-src 'self' {o}")),
        )
        .unwrap_or(HeaderValue::from_static(CONTENT_SECURITY_POLICY)),
        None => HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    }
}

/// Reads an HTML page of the web folder and sends it with the security headers.
async fn html_page(state: &AppState, name: &str) -> AppResult<Response> {
    let path = state.config.web_dir.join(name);
    let body = tokio::fs::read(&path).await.map_err(|_| {
        AppError::not_found(format!(
            "{name} is not installed; the server serves its pages from its web folder"
        ))
    })?;
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        content_security_policy(state.config.glyphs_url.as_deref()),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// `GET /styles/{name}.json`: a style of the styles folder with its URLs made absolute.
async fn style(
    State(state): State<AppState>,
    name: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> AppResult<Response> {
    // A name that is not UTF-8 is a problem+json 400 like every other path, not axum's text.
    let name = crate::tiles::routes::path(name)?;
    let stem = name
        .strip_suffix(".json")
        .filter(|s| {
            !s.is_empty()
                && s.len() <= 64
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        })
        .ok_or_else(|| AppError::not_found("styles are named /styles/{name}.json"))?;
    let path = state.config.styles_dir.join(format!("{stem}.json"));
    let text = tokio::fs::read(&path)
        .await
        .map_err(|_| AppError::not_found(format!("no style named {stem:?}")))?;
    let mut doc: Value = serde_json::from_slice(&text)
        .map_err(|e| AppError::Internal(format!("style {stem} is not JSON: {e}")))?;
    let base = state.base_url(&headers);
    rewrite_style(&mut doc, &base, state.config.glyphs_url.as_deref());
    let body = serde_json::to_vec(&doc).map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(crate::tiles::routes::send_document(
        &state,
        &headers,
        body,
        "application/json",
    ))
}

/// Makes the style's server-relative URLs (sources, tiles, glyphs, sprite) absolute on `base`,
/// and puts the configured glyph URL in place of the style's when one is given.
pub fn rewrite_style(doc: &mut Value, base: &str, glyphs: Option<&str>) {
    let absolute = |v: &mut Value| {
        if let Some(s) = v.as_str()
            && s.starts_with('/')
        {
            *v = Value::String(format!("{base}{s}"));
        }
    };
    if let Some(sources) = doc.get_mut("sources").and_then(Value::as_object_mut) {
        for source in sources.values_mut() {
            if let Some(url) = source.get_mut("url") {
                absolute(url);
            }
            if let Some(tiles) = source.get_mut("tiles").and_then(Value::as_array_mut) {
                tiles.iter_mut().for_each(absolute);
            }
        }
    }
    if let Some(g) = glyphs {
        doc["glyphs"] = Value::String(g.to_string());
    }
    for key in ["glyphs", "sprite"] {
        if let Some(v) = doc.get_mut(key) {
            absolute(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn styles_get_absolute_urls() {
        let mut doc = json!({
            "sources": {"a": {"url": "/tiles/x.json"}, "b": {"tiles": ["/t/{z}", "http://o/t"]}},
            "glyphs": "/web/fonts/{fontstack}/{range}.pbf",
        });
        rewrite_style(&mut doc, "https://h", None);
        assert_eq!(doc["sources"]["a"]["url"], "https://h/tiles/x.json");
        assert_eq!(doc["sources"]["b"]["tiles"][0], "https://h/t/{z}");
        assert_eq!(doc["sources"]["b"]["tiles"][1], "http://o/t");
        assert_eq!(doc["glyphs"], "https://h/web/fonts/{fontstack}/{range}.pbf");
        rewrite_style(
            &mut doc,
            "https://h",
            Some("https://g/{fontstack}/{range}.pbf"),
        );
        assert_eq!(doc["glyphs"], "https://g/{fontstack}/{range}.pbf");
    }

    #[test]
    fn a_glyph_host_is_allowed_to_the_pages() {
        let own = content_security_policy(None);
        assert_eq!(own, CONTENT_SECURITY_POLICY);
        assert_eq!(
            content_security_policy(Some("/web/fonts/{fontstack}/{range}.pbf")),
            own
        );
        let other = content_security_policy(Some(
            "https://fonts.example.org:8443/{fontstack}/{range}.pbf",
        ));
        let other = other.to_str().unwrap();
        assert!(
            other.contains("connect-src 'self' https://fonts.example.org:8443;"),
            "{other}"
        );
    }
}
