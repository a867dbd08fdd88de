//! OGC API - Features, Part 1 Core: landing page, conformance, collections, one feature.
//!
//! The items route is [`super::items`]; this module adds the documents around it. Coordinates
//! are always WGS84 longitude/latitude (CRS84), as the core requires.

use crate::app::AppState;
use crate::config::LayerConfig;
use crate::error::{AppError, AppResult};
use crate::tiles::routes::{GEOJSON_TYPE, path, send_document};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};

/// The CRS of every geometry served.
pub const CRS84: &str = "http://www.opengis.net/def/crs/OGC/1.3/CRS84";

/// Conformance classes this server implements.
pub const CONFORMANCE: &[&str] = &[
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
];

/// Refuses query parameters other than `f=json` on the metadata documents.
fn json_only(raw: Option<&str>) -> AppResult<()> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|e| AppError::bad(format!("malformed query string: {e}")))?;
    for (k, v) in pairs {
        if k != "f" || v != "json" {
            return Err(AppError::bad(format!(
                "unknown query parameter {:?}; only f=json is accepted here",
                crate::app::truncate(&k, 32)
            )));
        }
    }
    Ok(())
}

fn link(href: String, rel: &str, media: &str, title: &str) -> Value {
    json!({"href": href, "rel": rel, "type": media, "title": title})
}

fn send_json(state: &AppState, headers: &HeaderMap, doc: &Value, media: &'static str) -> Response {
    send_document(state, headers, doc.to_string().into_bytes(), media)
}

/// The landing page (`GET /` asked for JSON): what this API is and where its parts are.
pub fn landing(state: &AppState, headers: &HeaderMap) -> Response {
    let base = state.base_url(headers);
    let doc = json!({
        "title": "COEQWAL network API",
        "description": "The CalSim3 water network of California: vector tiles, GeoJSON features \
                        (OGC API - Features) and network analysis.",
        "links": [
            link(format!("{base}/?f=json"), "self", "application/json", "This document"),
            link(format!("{base}/"), "alternate", "text/html", "Map viewer"),
            link(format!("{base}/api/openapi.json"), "service-desc",
                 "application/vnd.oai.openapi+json;version=3.1", "OpenAPI description"),
            link(format!("{base}/docs"), "service-doc", "text/html", "API documentation"),
            link(format!("{base}/conformance"), "conformance", "application/json",
                 "Conformance classes"),
            link(format!("{base}/collections"), "data", "application/json", "Collections"),
        ],
    });
    send_json(state, headers, &doc, "application/json")
}

/// `GET /conformance`.
pub async fn conformance(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> AppResult<Response> {
    json_only(raw.as_deref())?;
    let doc = json!({ "conformsTo": CONFORMANCE });
    Ok(send_json(&state, &headers, &doc, "application/json"))
}

/// One collection's description, with its extent from the source.
async fn collection_doc(state: &AppState, layer: &LayerConfig, base: &str) -> AppResult<Value> {
    let stats = state.source.stats(layer).await?;
    let bbox = stats
        .bounds
        .map(|b| vec![b.minx, b.miny, b.maxx, b.maxy])
        .unwrap_or_else(|| vec![-180.0, -90.0, 180.0, 90.0]);
    let href = format!("{base}/collections/{}", layer.name);
    Ok(json!({
        "id": layer.name,
        "title": layer.title.clone().unwrap_or_else(|| layer.name.clone()),
        "description": format!("{} features of table {}; {} in all",
                               layer.geometry.name(), layer.table, stats.count),
        "itemType": "feature",
        "crs": [CRS84],
        "storageCrs": CRS84,
        "extent": {"spatial": {"bbox": [bbox], "crs": CRS84}},
        "links": [
            link(href.clone(), "self", "application/json", "This collection"),
            link(format!("{href}/items"), "items", GEOJSON_TYPE, "Features"),
            link(format!("{base}/tiles/{}.json", layer.name), "describedby",
                 "application/json", "TileJSON of this layer's vector tiles"),
        ],
    }))
}

/// `GET /collections`.
pub async fn collections(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> AppResult<Response> {
    json_only(raw.as_deref())?;
    let base = state.base_url(&headers);
    let mut list = Vec::with_capacity(state.config.layers.len());
    for layer in &state.config.layers {
        list.push(collection_doc(&state, layer, &base).await?);
    }
    let doc = json!({
        "links": [link(format!("{base}/collections"), "self", "application/json", "Collections")],
        "collections": list,
    });
    Ok(send_json(&state, &headers, &doc, "application/json"))
}

/// Resolves exactly one layer name of a path (a comma list names no collection: 404).
pub fn one_layer<'a>(state: &'a AppState, name: &str) -> AppResult<&'a LayerConfig> {
    if name.contains(',') {
        return Err(AppError::not_found(format!(
            "no collection named {:?}",
            crate::app::truncate(name, 64)
        )));
    }
    state
        .layers(name)?
        .into_iter()
        .next()
        .ok_or_else(|| AppError::not_found("no collection named"))
}

/// `GET /collections/{layer}`.
pub async fn collection(
    State(state): State<AppState>,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> AppResult<Response> {
    let name = path(name)?;
    json_only(raw.as_deref())?;
    let layer = one_layer(&state, &name)?;
    let doc = collection_doc(&state, layer, &state.base_url(&headers)).await?;
    Ok(send_json(&state, &headers, &doc, "application/json"))
}

/// `GET /collections/{layer}/items/{id}`: one feature, with `self` and `collection` links.
pub async fn item(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Path<(String, String)>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> AppResult<Response> {
    let (name, id) = path(params)?;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.as_deref().unwrap_or(""))
        .map_err(|e| AppError::bad(format!("malformed query string: {e}")))?;
    if let Some((k, _)) = pairs
        .iter()
        .find(|(k, v)| !(k == "f" && (v == "json" || v == "geojson")))
    {
        return Err(AppError::bad(format!(
            "unknown query parameter {:?}",
            crate::app::truncate(k, 32)
        )));
    }
    let layer = one_layer(&state, &name)?;
    let missing = || {
        AppError::not_found(format!(
            "no feature {:?} in collection {}",
            crate::app::truncate(&id, 32),
            layer.name
        ))
    };
    let n: i64 = id.parse().map_err(|_| missing())?;
    let text = state.source.item(layer, n).await?.ok_or_else(missing)?;
    let mut feature: Value =
        serde_json::from_str(&text).map_err(|e| AppError::Internal(e.to_string()))?;
    let href = format!("{}/collections/{}", state.base_url(&headers), layer.name);
    feature["links"] = json!([
        link(
            format!("{href}/items/{n}"),
            "self",
            GEOJSON_TYPE,
            "This feature"
        ),
        link(href, "collection", "application/json", "The collection"),
    ]);
    Ok(send_json(&state, &headers, &feature, GEOJSON_TYPE))
}
