//! GeoJSON features by bbox and page: `/collections/{layer}/items`.
//!
//! Query text is parsed here into an `ItemsQuery` (every bad value a 400 that names the
//! parameter), the source answers a page, and the page is wrapped as a FeatureCollection with
//! `numberMatched`, `numberReturned` and a `next` link while more remain.

pub mod ogc;

use crate::app::AppState;
use crate::error::{AppError, AppResult};
use crate::source::ItemsQuery;
use crate::tiles::grid::parse_bbox;
use crate::tiles::routes::path;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{Value, json};

/// Largest offset accepted, to keep arithmetic and the database's work bounded.
pub const MAX_OFFSET: usize = 10_000_000;

/// Parses the query string of an items request.
pub fn parse_items_query(
    raw: Option<&str>,
    layer: &crate::config::LayerConfig,
    config: &crate::config::Config,
) -> AppResult<ItemsQuery> {
    let mut q = ItemsQuery {
        limit: config.items_default_limit,
        ..Default::default()
    };
    for (key, value) in crate::app::query_pairs(raw)? {
        match key.as_str() {
            "bbox" => q.bbox = Some(parse_bbox(&value, config.max_bbox_area)?),
            "limit" => {
                q.limit = parse_count("limit", &value, 1, config.items_max_limit)?;
            }
            "offset" => q.offset = parse_count("offset", &value, 0, MAX_OFFSET)?,
            "clip" => {
                q.clip = match value.as_str() {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return Err(AppError::bad("clip must be true or false")),
                }
            }
            "f" => {
                if value != "json" && value != "geojson" {
                    return Err(AppError::bad("f must be geojson or json"));
                }
            }
            name => {
                // A published name (`node_type`), or the data's own key for it (`type`).
                let property = layer.property(name).or_else(|| {
                    layer
                        .properties
                        .iter()
                        .find(|p| p.field() == name && layer.property(p.field()).is_none())
                });
                let Some(property) = property else {
                    return Err(AppError::bad(format!(
                        "unknown query parameter {:?}: use bbox, limit, offset, clip or a property of layer {}",
                        crate::app::truncate(name, 64),
                        layer.name
                    )));
                };
                q.filters.push((property.name.clone(), value));
            }
        }
    }
    Ok(q)
}

/// Parses a non-negative integer within `min..=max`, naming the parameter when it is not.
pub fn parse_count(name: &str, value: &str, min: usize, max: usize) -> AppResult<usize> {
    let n: usize = value.trim().parse().map_err(|_| {
        AppError::bad(format!(
            "{name} must be an integer from {min} to {max}; got {:?}",
            crate::app::truncate(value, 32)
        ))
    })?;
    if n < min || n > max {
        return Err(AppError::bad(format!(
            "{name} must be from {min} to {max}; got {n}"
        )));
    }
    Ok(n)
}

/// `GET /collections/{layer}/items`.
pub async fn items(
    State(state): State<AppState>,
    headers: HeaderMap,
    layer: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> AppResult<Response> {
    let name = path(layer)?;
    let layer = ogc::one_layer(&state, &name)?;
    let query = parse_items_query(raw.as_deref(), layer, &state.config)?;
    // Counting first surfaces a database failure as a 503 before any byte is sent.
    let matched = state.source.count(layer, &query).await?;
    let base = format!(
        "{}/collections/{}/items",
        state.base_url(&headers),
        layer.name
    );
    let etag = format!(
        "\"{:016x}\"",
        xxhash_rust::xxh3::xxh3_64(
            format!(
                "{base}?{}|{}|{matched}",
                raw.as_deref().unwrap_or(""),
                state
                    .data_version
                    .load(std::sync::atomic::Ordering::Relaxed)
            )
            .as_bytes()
        )
    );
    let mut out = HeaderMap::new();
    out.insert(
        header::ETAG,
        HeaderValue::from_str(&etag).map_err(|e| AppError::Internal(e.to_string()))?,
    );
    if let Ok(v) = HeaderValue::from_str(&state.config.cache_control) {
        out.insert(header::CACHE_CONTROL, v);
    }
    out.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if crate::tiles::routes::not_modified(&headers, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, out).into_response());
    }
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::tiles::routes::GEOJSON_TYPE),
    );

    // Features flow from the source through a small bounded channel straight to the client.
    let (tx, rx) = tokio::sync::mpsc::channel::<String>(64);
    let (source, layer_owned, q) = (state.source.clone(), layer.clone(), query.clone());
    tokio::spawn(async move {
        if let Err(e) = source.stream_items(&layer_owned, &q, tx).await {
            tracing::warn!(error = %e, "feature page stopped early");
        }
    });
    let raw_query = raw.clone();
    let tail = move |returned: usize| -> String {
        let mut links = vec![
            json!({"rel": "self", "type": "application/geo+json", "href": page_url(&base, raw_query.as_deref(), query.offset)}),
        ];
        if (query.offset + returned) < matched as usize && returned > 0 {
            links.push(json!({"rel": "next", "type": "application/geo+json", "href": page_url(&base, raw_query.as_deref(), query.offset + returned)}));
        }
        if query.offset > 0 {
            let prev = query.offset.saturating_sub(query.limit);
            links.push(json!({"rel": "prev", "type": "application/geo+json", "href": page_url(&base, raw_query.as_deref(), prev)}));
        }
        format!(
            "],\"numberMatched\":{matched},\"numberReturned\":{returned},\"links\":{}}}",
            Value::Array(links)
        )
    };
    let head = futures::stream::once(async {
        Ok::<_, std::convert::Infallible>(Bytes::from_static(
            b"{\"type\":\"FeatureCollection\",\"features\":[",
        ))
    });
    // Each feature goes out as it arrives; the tail follows once the page is complete.
    let features =
        futures::stream::unfold((rx, 0usize, Some(tail)), |(mut rx, n, tail)| async move {
            match rx.recv().await {
                Some(f) => {
                    let chunk = if n == 0 { f } else { format!(",{f}") };
                    Some((Ok(Bytes::from(chunk)), (rx, n + 1, tail)))
                }
                None => tail.map(|t| (Ok(Bytes::from(t(n))), (rx, n, None))),
            }
        });
    // Fused: the compression layer may poll once more after the end.
    let body = axum::body::Body::from_stream(head.chain(features).fuse());
    Ok((out, body).into_response())
}

/// The same query with another offset.
fn page_url(base: &str, raw: Option<&str>, offset: usize) -> String {
    let mut pairs: Vec<(String, String)> = raw
        .and_then(|r| serde_urlencoded::from_str(r).ok())
        .unwrap_or_default();
    pairs.retain(|(k, _)| k != "offset");
    pairs.push(("offset".into(), offset.to_string()));
    match serde_urlencoded::to_string(&pairs) {
        Ok(q) => format!("{base}?{q}"),
        Err(_) => base.to_string(),
    }
}
