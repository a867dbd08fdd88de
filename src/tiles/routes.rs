//! Handlers of `/tiles/...` and `/catalog`: parse, ask the source, shape the response.

use crate::app::AppState;
use crate::error::{AppError, AppResult};
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

/// `GET /tiles/{layers}/{z}/{x}/{y}.{mvt|pbf|geojson}`.
pub async fn tile(
    State(state): State<AppState>,
    parts: Result<Path<(String, String, String, String)>, PathRejection>,
) -> AppResult<Response> {
    let (layers, z, x, y) = path(parts)?;
    let (tile, ext) = parse_tile_path(&z, &x, &y, state.config.max_zoom)?;
    let layers = state.layers(&layers)?;
    match ext.as_str() {
        "mvt" | "pbf" => {
            let bytes = state.source.tile(&layers, tile).await?;
            if bytes.is_empty() {
                return Ok(StatusCode::NO_CONTENT.into_response());
            }
            Ok((
                [(header::CONTENT_TYPE, HeaderValue::from_static(MVT_TYPE))],
                bytes,
            )
                .into_response())
        }
        "geojson" | "json" => {
            let features = state.source.tile_features(&layers, tile).await?;
            Ok(geojson_response(feature_collection(&features, None)))
        }
        other => Err(AppError::bad(format!(
            "unknown tile format {:?}: use .mvt, .pbf or .geojson",
            crate::app::truncate(other, 32)
        ))),
    }
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
    Ok(Json(doc).into_response())
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
