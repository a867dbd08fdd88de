//! Handlers of `/tiles/...` and `/catalog`: parse, ask the source, shape the response.

use crate::app::AppState;
use crate::error::{AppError, AppResult};
use crate::tiles::cache::{EncodedTile, Format, TileKey};
use crate::tiles::grid::parse_tile_path;
use crate::tiles::tilejson;
use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// MIME type of Mapbox Vector Tiles.
pub const MVT_TYPE: &str = "application/vnd.mapbox-vector-tile";
/// MIME type of GeoJSON.
pub const GEOJSON_TYPE: &str = "application/geo+json";

/// Turns a path that could not be decoded into a 400 instead of axum's plain-text answer.
pub fn path<T>(p: Result<Path<T>, PathRejection>) -> AppResult<T> {
    p.map(|Path(v)| v)
        .map_err(|e| AppError::bad(format!("malformed path: {}", e.body_text())))
}

/// `GET /tiles/{layers}/{z}/{x}/{y}.{mvt|pbf|geojson}`: from the cache, or made once.
pub async fn tile(
    State(state): State<AppState>,
    headers: HeaderMap,
    parts: Result<Path<(String, String, String, String)>, PathRejection>,
) -> AppResult<Response> {
    let (layers, z, x, y) = path(parts)?;
    let (tile, ext) = parse_tile_path(&z, &x, &y, state.config.max_zoom)?;
    let layers = state.layers(&layers)?;
    let format = match ext.as_str() {
        "mvt" | "pbf" => Format::Mvt,
        "geojson" | "json" => Format::GeoJson,
        other => {
            return Err(AppError::bad(format!(
                "unknown tile format {:?}: use .mvt, .pbf or .geojson",
                crate::app::truncate(other, 32)
            )));
        }
    };
    let names: Vec<&str> = layers.iter().map(|l| l.name.as_str()).collect();
    let key = TileKey {
        layers: names.join(",").into(),
        tile,
        format,
    };
    let encoded = cached_tile(&state, &layers, key).await?;
    let media = match format {
        Format::Mvt => MVT_TYPE,
        Format::GeoJson => GEOJSON_TYPE,
    };
    Ok(send_tile(&state, &headers, &encoded, media))
}

/// A tile through every level: this instance's cache, then the shared Redis level, then the
/// source (counted in `source_tiles`), storing it back on the way out.
pub async fn cached_tile(
    state: &AppState,
    layers: &[&crate::config::LayerConfig],
    key: TileKey,
) -> AppResult<EncodedTile> {
    let cacheable = layers.iter().all(|l| l.caches(key.tile.z));
    let (tile, format) = (key.tile, key.format);
    let shared = state.shared.clone().filter(|_| cacheable);
    let shared_key = key.clone();
    let make = async move {
        if let Some(shared) = &shared
            && let Some(bytes) = shared.get(&shared_key).await
        {
            return Ok(bytes);
        }
        state
            .source_tiles
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let bytes = match format {
            Format::Mvt => state.source.tile(layers, tile).await?,
            Format::GeoJson => {
                feature_collection(&state.source.tile_features(layers, tile).await?, None)
                    .into_bytes()
            }
        };
        if let Some(shared) = &shared {
            shared.put(&shared_key, &bytes).await;
        }
        Ok::<_, AppError>(bytes)
    };
    state
        .tiles
        .get_or_make(key, cacheable, make)
        .await
        // Every request that waited on this generation gets the same error.
        .map_err(|e| (*e).clone())
}

/// Content codings a client accepts, best first among those we keep: br, gzip, identity.
pub fn negotiate(headers: &HeaderMap) -> Option<&'static str> {
    let accept = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let accepts = |name: &str| {
        accept.split(',').any(|part| {
            let mut it = part.split(';');
            let coding = it.next().unwrap_or("").trim();
            let q = it
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            (coding.eq_ignore_ascii_case(name) || coding == "*") && q > 0.0
        })
    };
    if accepts("br") {
        Some("br")
    } else if accepts("gzip") {
        Some("gzip")
    } else {
        None
    }
}

/// Whether `If-None-Match` names this ETag (or `*`).
pub fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}

/// The caching headers every cacheable answer carries.
fn caching_headers(state: &AppState, etag: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&state.config.cache_control) {
        h.insert(header::CACHE_CONTROL, v);
    }
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    h
}

/// Sends an encoded tile: 304 when the client has it, 204 when empty, else the best coding.
pub fn send_tile(
    state: &AppState,
    headers: &HeaderMap,
    tile: &EncodedTile,
    media: &'static str,
) -> Response {
    let mut out = caching_headers(state, &tile.etag);
    if not_modified(headers, &tile.etag) {
        return (StatusCode::NOT_MODIFIED, out).into_response();
    }
    if tile.raw.is_empty() {
        return (StatusCode::NO_CONTENT, out).into_response();
    }
    out.insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    let (body, coding) = match negotiate(headers) {
        Some("br") => {
            out.insert(header::CONTENT_ENCODING, HeaderValue::from_static("br"));
            (tile.brotli(), "br")
        }
        Some(_) => {
            out.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            (tile.gzip(), "gzip")
        }
        None => (tile.raw.clone(), "identity"),
    };
    let format = if media == GEOJSON_TYPE {
        "geojson"
    } else {
        "mvt"
    };
    crate::telemetry::tile_bytes(format, coding, body.len());
    (out, body).into_response()
}

/// A JSON or GeoJSON document with a strong ETag, `304` when the client has it.
pub fn send_document(
    state: &AppState,
    headers: &HeaderMap,
    body: Vec<u8>,
    media: &'static str,
) -> Response {
    let etag = format!("\"{:016x}\"", xxhash_rust::xxh3::xxh3_64(&body));
    let mut out = caching_headers(state, &etag);
    if not_modified(headers, &etag) {
        return (StatusCode::NOT_MODIFIED, out).into_response();
    }
    out.insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    (out, body).into_response()
}

/// Joins pre-serialised features into a FeatureCollection, with extra members when given.
pub fn feature_collection(
    features: &[String],
    extra: Option<&serde_json::Map<String, serde_json::Value>>,
) -> String {
    let size: usize = features.iter().map(|f| f.len() + 1).sum();
    let mut out = String::with_capacity(size + 256);
    out.push_str("{\"type\":\"FeatureCollection\"");
    if let Some(extra) = extra {
        for (k, v) in extra {
            out.push(',');
            out.push_str(&serde_json::Value::from(k.as_str()).to_string());
            out.push(':');
            out.push_str(&v.to_string());
        }
    }
    out.push_str(",\"features\":[");
    for (i, f) in features.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(f);
    }
    out.push_str("]}");
    out
}

/// A GeoJSON body with its media type.
pub fn geojson_response(body: String) -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(GEOJSON_TYPE))],
        body,
    )
        .into_response()
}

/// `GET /tiles/{layers}.json`: TileJSON 3.0.0.
pub async fn tilejson(
    State(state): State<AppState>,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
) -> AppResult<Response> {
    let name = path(name)?;
    let list = name
        .strip_suffix(".json")
        .ok_or_else(|| AppError::not_found("TileJSON is at /tiles/{layers}.json"))?;
    let layers = state.layers(list)?;
    let mut stats = Vec::with_capacity(layers.len());
    for l in &layers {
        stats.push(state.source.stats(l).await?);
    }
    let doc = tilejson::tilejson(&layers, &stats, &state.base_url(&headers));
    Ok(send_document(
        &state,
        &headers,
        doc.to_string().into_bytes(),
        "application/json",
    ))
}

/// `GET /catalog`: every layer with its fields, zooms, extent and size.
pub async fn catalog(State(state): State<AppState>, headers: HeaderMap) -> AppResult<Response> {
    let mut stats = Vec::with_capacity(state.config.layers.len());
    for l in &state.config.layers {
        stats.push(state.source.stats(l).await?);
    }
    let doc = tilejson::catalog(&state.config.layers, &stats, &state.base_url(&headers));
    Ok(Json(doc).into_response())
}
