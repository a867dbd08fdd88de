//! The original FastAPI service's routes (`/api/...`), same paths, parameters and field names.
//!
//! The existing front end calls these, so their JSON shapes are kept as they were; their bugs
//! are not (see DESIGN.md): `zoom` is honoured, a missing arc is a 404, `network` visits each
//! node once in both directions and returns only arcs inside the visited set. Lists and
//! analyses are answered from the in-memory graph (the same on both sources); search goes to
//! the source's index.

use crate::app::AppState;
use crate::error::{AppError, AppResult};
use crate::network::graph::{Direction, Graph};
use crate::network::routes::Params;
use crate::network::{ARC_LAYER, NODE_LAYER};
use crate::tiles::grid::parse_bbox;
use crate::tiles::routes::path;
use axum::Json;
use axum::extract::OriginalUri;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};

/// Properties that have fields of their own in `/api/nodes` elements (the rest go to `attributes`).
const NODE_FIELDS: [&str; 7] = [
    "id",
    "short_code",
    "calsim_id",
    "name",
    "description",
    "node_type",
    "hydrologic_region",
];
/// Same for `/api/arcs`.
const ARC_FIELDS: [&str; 9] = [
    "id",
    "short_code",
    "calsim_id",
    "name",
    "description",
    "arc_type",
    "from_node",
    "to_node",
    "hydrologic_region",
];

fn prop<'a>(props: &'a Map<String, Value>, key: &str) -> &'a Value {
    props.get(key).unwrap_or(&Value::Null)
}

fn attributes(props: &Map<String, Value>, skip: &[&str]) -> Value {
    Value::Object(
        props
            .iter()
            .filter(|(k, _)| !skip.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    )
}

/// Longitude and latitude of a node's Point geometry.
fn lon_lat(geometry: &Value) -> (Option<f64>, Option<f64>) {
    let c = geometry.get("coordinates");
    (
        c.and_then(|c| c.get(0)).and_then(Value::as_f64),
        c.and_then(|c| c.get(1)).and_then(Value::as_f64),
    )
}

fn node_element(g: &Graph, n: u32) -> Value {
    let node = &g.nodes[n as usize];
    let (lon, lat) = lon_lat(&node.geometry);
    let p = &node.properties;
    json!({
        "id": node.id,
        "short_code": node.code,
        "calsim_id": prop(p, "calsim_id"),
        "name": prop(p, "name"),
        "description": prop(p, "description"),
        "node_type": prop(p, "node_type"),
        "latitude": lat,
        "longitude": lon,
        "hydrologic_region": prop(p, "hydrologic_region"),
        "geojson": node.geometry,
        "attributes": attributes(p, &NODE_FIELDS),
    })
}

fn arc_element(g: &Graph, a: u32) -> Value {
    let arc = &g.arcs[a as usize];
    let p = &arc.properties;
    json!({
        "id": arc.id,
        "short_code": arc.code,
        "calsim_id": prop(p, "calsim_id"),
        "name": prop(p, "name"),
        "description": prop(p, "description"),
        "arc_type": prop(p, "arc_type"),
        "from_node": g.nodes[arc.from as usize].code,
        "to_node": g.nodes[arc.to as usize].code,
        "shape_length": arc.length_m,
        "hydrologic_region": prop(p, "hydrologic_region"),
        "geojson": arc.geometry,
        "attributes": attributes(p, &ARC_FIELDS),
    })
}

fn region_matches(props: &Map<String, Value>, region: Option<&str>) -> bool {
    region.is_none_or(|r| props.get("hydrologic_region").and_then(Value::as_str) == Some(r))
}

/// A JSON answer computed from the graph alone, cached per graph generation by request URI.
fn answer(
    state: &AppState,
    uri: &Uri,
    make: impl FnOnce(&Graph) -> AppResult<Value>,
) -> AppResult<Response> {
    let bytes = state.network.answer(&uri.to_string(), make)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], bytes).into_response())
}

/// `GET /api/health`.
pub async fn health(State(state): State<AppState>) -> Response {
    let timestamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let is_db = state.source.name() == "postgis";
    match state.source.ready().await {
        Ok(()) => Json(json!({
            "status": "healthy",
            "timestamp": timestamp,
            "database": if is_db { "connected" } else { "not used (memory source)" },
        }))
        .into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                json!({"status": "unhealthy", "timestamp": timestamp, "database": "disconnected"}),
            ),
        )
            .into_response(),
    }
}

/// A `limit`/`region` list of `count` graph elements, each shaped by `element`.
fn region_list(
    state: &AppState,
    uri: &Uri,
    raw: Option<&str>,
    count: impl Fn(&Graph) -> usize,
    props: impl Fn(&Graph, u32) -> &Map<String, Value>,
    element: impl Fn(&Graph, u32) -> Value,
) -> AppResult<Response> {
    let p = Params::parse(raw, &["limit", "region"])?;
    let limit = p.int("limit", 1, 10_000, Some(1000))?.unwrap_or(1000) as usize;
    answer(state, uri, |g| {
        Ok(Value::Array(
            (0..count(g) as u32)
                .filter(|&i| region_matches(props(g, i), p.get("region")))
                .take(limit)
                .map(|i| element(g, i))
                .collect(),
        ))
    })
}

/// `GET /api/nodes?limit=1000&region=`.
pub async fn nodes(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    RawQuery(raw): RawQuery,
) -> AppResult<Response> {
    region_list(
        &state,
        &uri,
        raw.as_deref(),
        |g| g.nodes.len(),
        |g, i| &g.nodes[i as usize].properties,
        node_element,
    )
}

/// `GET /api/arcs?limit=1000&region=`.
pub async fn arcs(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    RawQuery(raw): RawQuery,
) -> AppResult<Response> {
    region_list(
        &state,
        &uri,
        raw.as_deref(),
        |g| g.arcs.len(),
        |g, i| &g.arcs[i as usize].properties,
        arc_element,
    )
}

/// The lowest zoom at which `/api/nodes/spatial` lists a node type: reservoirs always, plants
/// and pumps from 7, everything from 9.
pub fn min_zoom_for(node_type: Option<&str>) -> i64 {
    match node_type {
        Some("STR") => 0,
        Some("PS") | Some("WTP") | Some("WWTP") | Some("PR") => 7,
        _ => 9,
    }
}

/// `GET /api/nodes/spatial?bbox=&zoom=&limit=`: nodes in a box, thinned by zoom.
pub async fn nodes_spatial(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    RawQuery(raw): RawQuery,
) -> AppResult<Response> {
    let p = Params::parse(raw.as_deref(), &["bbox", "zoom", "limit"])?;
    let bbox_text = p
        .get("bbox")
        .ok_or_else(|| AppError::bad("bbox is required: minLng,minLat,maxLng,maxLat"))?;
    let b = parse_bbox(bbox_text, state.config.max_bbox_area)?;
    let zoom = p.int("zoom", 0, 22, Some(10))?.unwrap_or(10);
    let limit = p.int("limit", 1, 10_000, Some(1000))?.unwrap_or(1000) as usize;
    answer(&state, &uri, |g| {
        let matching: Vec<u32> = (0..g.nodes.len() as u32)
            .filter(|&n| {
                let node = &g.nodes[n as usize];
                let (Some(lon), Some(lat)) = lon_lat(&node.geometry) else {
                    return false;
                };
                lon >= b.minx
                    && lon <= b.maxx
                    && lat >= b.miny
                    && lat <= b.maxy
                    && zoom >= min_zoom_for(node.node_type.as_deref())
            })
            .collect();
        let total = matching.len();
        let nodes: Vec<Value> = matching
            .into_iter()
            .take(limit)
            .map(|n| node_element(g, n))
            .collect();
        Ok(json!({
            "nodes": nodes,
            "total": total,
            "bbox": [b.minx, b.miny, b.maxx, b.maxy],
            "zoom": zoom,
            "truncated": total > limit,
        }))
    })
}

/// `GET /api/nodes/optimized?limit=500`: the lightest node list for a map.
pub async fn nodes_optimized(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    RawQuery(raw): RawQuery,
) -> AppResult<Response> {
    let p = Params::parse(raw.as_deref(), &["limit"])?;
    let limit = p.int("limit", 1, 10_000, Some(500))?.unwrap_or(500) as usize;
    answer(&state, &uri, |g| {
        let list: Vec<Value> = g
            .nodes
            .iter()
            .take(limit)
            .map(|node| {
                let (lon, lat) = lon_lat(&node.geometry);
                json!({"id": node.id, "short_code": node.code, "name": node.name,
                   "node_type": node.node_type, "longitude": lon, "latitude": lat})
            })
            .collect();
        Ok(Value::Array(list))
    })
}

/// `GET /api/search?q=&limit=20`: nodes then arcs, through the source's index.
pub async fn search(State(state): State<AppState>, RawQuery(raw): RawQuery) -> AppResult<Response> {
    let p = Params::parse(raw.as_deref(), &["q", "limit"])?;
    let q = p.get("q").map(str::trim).unwrap_or_default();
    let len = q.chars().count();
    if !(2..=100).contains(&len) {
        return Err(AppError::bad(format!(
            "q must be 2 to 100 characters long; got {len}"
        )));
    }
    let limit = p.int("limit", 1, 100, Some(20))?.unwrap_or(20) as usize;
    let mut results = Vec::new();
    let mut total = 0;
    for (layer, kind) in [(NODE_LAYER, "node"), (ARC_LAYER, "arc")] {
        let Some(layer) = state.config.layer(layer) else {
            continue;
        };
        let page = state.source.search(layer, q, limit).await?;
        total += page.total;
        results.extend(page.hits.into_iter().map(|h| {
            json!({"type": kind, "id": h.id, "short_code": h.short_code,
                   "name": h.name, "description": h.description})
        }));
    }
    results.truncate(limit);
    Ok(Json(json!({"results": results, "total": total})).into_response())
}

fn node_by_id(g: &Graph, id: &str) -> AppResult<u32> {
    id.parse::<i64>()
        .ok()
        .and_then(|id| g.node_by_id(id))
        .ok_or_else(|| {
            AppError::not_found(format!(
                "no node with id {:?}",
                crate::app::truncate(id, 32)
            ))
        })
}

fn element(g: &Graph, n: u32, distance: u32, direction: &str) -> Value {
    let node = &g.nodes[n as usize];
    json!({"id": node.id, "short_code": node.code, "name": node.name,
           "element_type": "node", "distance": distance, "direction": direction})
}

/// The analysis of a node: what lies upstream and downstream within `max_depth`, and the arcs
/// that touch it.
pub fn node_analysis(g: &Graph, n: u32, max_depth: u32) -> Value {
    let walk = |dir: Direction| -> Vec<Value> {
        g.traverse(n, dir, Some(max_depth), None)
            .visits
            .iter()
            .skip(1)
            .map(|v| element(g, v.node, v.depth, dir.name()))
            .collect()
    };
    let arc_el = |a: u32, direction: &str| {
        let arc = &g.arcs[a as usize];
        json!({"id": arc.id, "short_code": arc.code, "name": arc.name,
               "element_type": "arc", "distance": 1, "direction": direction})
    };
    let connected: Vec<Value> = g
        .entering(n)
        .map(|a| arc_el(a, "upstream"))
        .chain(g.leaving(n).map(|a| arc_el(a, "downstream")))
        .collect();
    json!({
        "origin_id": g.nodes[n as usize].id,
        "origin_type": "node",
        "upstream_nodes": walk(Direction::Upstream),
        "downstream_nodes": walk(Direction::Downstream),
        "connected_arcs": connected,
    })
}

async fn analysis(
    state: AppState,
    uri: Uri,
    id: String,
    raw: Option<String>,
) -> AppResult<Response> {
    let p = Params::parse(raw.as_deref(), &["max_depth"])?;
    let max_depth = p.int("max_depth", 1, 10, Some(3))?.unwrap_or(3) as u32;
    answer(&state, &uri, |g| {
        let n = node_by_id(g, &id)?;
        Ok(node_analysis(g, n, max_depth))
    })
}

/// `GET /api/nodes/{id}/analysis?max_depth=3`, also served at the original's second path
/// `GET /api/network/analysis/node/{id}`.
pub async fn node_analysis_route(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    id: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> AppResult<Response> {
    analysis(state, uri, path(id)?, raw).await
}

/// `GET /api/arcs/{id}/analysis`: the arc's two nodes; 404 when there is no such arc.
pub async fn arc_analysis(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    id: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> AppResult<Response> {
    let id = path(id)?;
    Params::parse(raw.as_deref(), &[])?;
    answer(&state, &uri, |g| {
        let a = id
            .parse::<i64>()
            .ok()
            .and_then(|id| g.arc_by_id(id))
            .ok_or_else(|| {
                AppError::not_found(format!(
                    "no arc with id {:?}",
                    crate::app::truncate(&id, 32)
                ))
            })?;
        let arc = &g.arcs[a as usize];
        let from = element(g, arc.from, 1, "upstream");
        let to = element(g, arc.to, 1, "downstream");
        Ok(json!({
            "origin_id": arc.id,
            "origin_type": "arc",
            "upstream_nodes": [from.clone()],
            "downstream_nodes": [to.clone()],
            "connected_arcs": [from, to],
        }))
    })
}

/// Nodes (with their smallest depth) and the arcs among them for `/api/nodes/{id}/network`.
pub fn node_network(
    g: &Graph,
    n: u32,
    direction: &str,
    max_depth: u32,
) -> (Vec<(u32, u32)>, Vec<u32>) {
    let mut depth: HashMap<u32, u32> = HashMap::new();
    let mut order = Vec::new();
    let dirs: &[Direction] = match direction {
        "upstream" => &[Direction::Upstream],
        "downstream" => &[Direction::Downstream],
        _ => &[Direction::Upstream, Direction::Downstream],
    };
    for &dir in dirs {
        for v in g.traverse(n, dir, Some(max_depth), None).visits {
            match depth.get_mut(&v.node) {
                Some(d) => *d = (*d).min(v.depth),
                None => {
                    depth.insert(v.node, v.depth);
                    order.push(v.node);
                }
            }
        }
    }
    let visited: HashSet<u32> = order.iter().copied().collect();
    let mut arcs = Vec::new();
    for &v in &order {
        for a in g.leaving(v) {
            if visited.contains(&g.arcs[a as usize].to) {
                arcs.push(a);
            }
        }
    }
    let nodes = order.into_iter().map(|v| (v, depth[&v])).collect();
    (nodes, arcs)
}

/// `GET /api/nodes/{id}/network?direction=both&max_depth=50&include_arcs=true`.
pub async fn node_network_route(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    id: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> AppResult<Response> {
    let id = path(id)?;
    let p = Params::parse(raw.as_deref(), &["direction", "max_depth", "include_arcs"])?;
    let direction = p.get("direction").unwrap_or("both");
    if !["both", "upstream", "downstream"].contains(&direction) {
        return Err(AppError::bad(
            "direction must be one of: both, upstream, downstream",
        ));
    }
    let max_depth = p.int("max_depth", 1, 100, Some(50))?.unwrap_or(50) as u32;
    let include_arcs = p.bool("include_arcs", true)?;
    answer(&state, &uri, |g| {
        let n = node_by_id(g, &id)?;
        let (nodes, arcs) = node_network(g, n, direction, max_depth);
        let nodes: Vec<Value> = nodes
            .iter()
            .map(|&(v, d)| {
                let node = &g.nodes[v as usize];
                json!({"id": node.id, "short_code": node.code, "name": node.name,
                   "node_type": node.node_type, "depth": d, "geometry": node.geometry})
            })
            .collect();
        let arcs: Vec<Value> = if include_arcs {
            arcs.iter()
                .map(|&a| {
                    let arc = &g.arcs[a as usize];
                    let (f, t) = (&g.nodes[arc.from as usize], &g.nodes[arc.to as usize]);
                    json!({"id": arc.id, "short_code": arc.code, "name": arc.name,
                       "from_node_id": f.id, "to_node_id": t.id,
                       "from_node_code": f.code, "to_node_code": t.code,
                       "geometry": arc.geometry, "arc_type": arc.arc_type})
                })
                .collect()
        } else {
            Vec::new()
        };
        Ok(json!({
            "source_node_id": g.nodes[n as usize].id,
            "direction": direction,
            "max_depth": max_depth,
            "nodes": nodes,
            "arcs": arcs,
        }))
    })
}

/// `GET /api/workshop/status`: (re)builds the graph and reports what is ready.
pub async fn workshop_status(State(state): State<AppState>) -> AppResult<Response> {
    let started = std::time::Instant::now();
    let g = state
        .network
        .rebuild(state.source.as_ref(), &state.config)
        .await?;
    let ready = state.source.ready().await.is_ok();
    // Warm every layer over the data's extent in the background; report how far it got.
    let zooms = crate::tiles::warm::parse_zooms(&state.config.warm_zooms, state.config.max_zoom)?;
    if ready && state.tiles.enabled() {
        tokio::spawn(crate::tiles::warm::warm_here(
            state.clone(),
            state.config.layers.clone(),
            zooms.clone(),
            state.warm.clone(),
        ));
    }
    let (entries, bytes) = state.tiles.usage().await;
    let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    Ok(Json(json!({
        "status": if ready { "ready" } else { "degraded" },
        "source": state.source.name(),
        "cache": {
            "enabled": state.tiles.enabled(),
            "warm_zooms": format!("{}-{}", zooms.start(), zooms.end()),
            "warming": state.warm.running.load(std::sync::atomic::Ordering::Relaxed),
            "tiles_total": load(&state.warm.total),
            "tiles_done": load(&state.warm.done),
            "entries": entries,
            "bytes": bytes,
        },
        "graph": {
            "nodes": g.nodes.len(),
            "arcs": g.arcs.len(),
            "components": g.component_count(),
            "arcs_left_out": g.dangling.len(),
            "build_ms": started.elapsed().as_millis() as u64,
        },
    }))
    .into_response())
}

/// Most requests one batch may carry.
pub const BATCH_MAX_ITEMS: usize = 50;
/// Largest batch body, in bytes.
pub const BATCH_MAX_BYTES: usize = 64 * 1024;

/// How much of an over-limit body is read and dropped before the 413 goes out.
const DISCARD_MAX_BYTES: usize = 8 * 1024 * 1024;

/// Reads a request body of at most `max` bytes. A larger one is a 413. What a client sends past
/// the limit is read and dropped (up to [`DISCARD_MAX_BYTES`], for at most 2 s), not kept, so a
/// client that is still writing reads the 413 rather than a connection reset; a declared
/// `Content-Length` over that bound is refused at once.
async fn read_capped(
    headers: &axum::http::HeaderMap,
    body: axum::body::Body,
    max: usize,
) -> AppResult<axum::body::Bytes> {
    use futures::StreamExt;
    let too_large = || AppError::TooLarge(format!("the batch body is larger than {max} bytes"));
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > DISCARD_MAX_BYTES as u64) {
        return Err(too_large());
    }
    let mut stream = body.into_data_stream();
    let mut kept = Vec::new();
    let mut seen = 0usize;
    let mut discard_until = None;
    loop {
        let next = match discard_until {
            None => stream.next().await,
            Some(deadline) => match tokio::time::timeout_at(deadline, stream.next()).await {
                Ok(next) => next,
                Err(_) => break,
            },
        };
        let chunk = match next {
            None => break,
            Some(Ok(chunk)) => chunk,
            Some(Err(_)) if discard_until.is_some() => break,
            Some(Err(e)) => return Err(AppError::bad(format!("cannot read the batch body: {e}"))),
        };
        seen = seen.saturating_add(chunk.len());
        if seen <= max {
            kept.extend_from_slice(&chunk);
        } else if seen > DISCARD_MAX_BYTES {
            break;
        } else if discard_until.is_none() {
            kept = Vec::new();
            discard_until = Some(tokio::time::Instant::now() + std::time::Duration::from_secs(2));
        }
    }
    if seen > max {
        return Err(too_large());
    }
    Ok(kept.into())
}

/// One request of a batch.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchItem {
    path: String,
}

/// `POST /api/batch`: up to 50 GET requests of this server, answered in order as
/// `{status, body}`; one failing item does not fail the others.
///
/// A body over [`BATCH_MAX_BYTES`] is refused (413) without being kept: see [`read_capped`].
pub async fn batch(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> AppResult<Response> {
    use tower::ServiceExt;
    let body = read_capped(&headers, body, BATCH_MAX_BYTES).await?;
    let items: Vec<BatchItem> = serde_json::from_slice(&body).map_err(|e| {
        AppError::bad(format!(
            "batch body must be a JSON array of {{\"path\": \"/...\"}}: {e}"
        ))
    })?;
    if items.len() > BATCH_MAX_ITEMS {
        return Err(AppError::bad(format!(
            "batch has {} requests; the maximum is {BATCH_MAX_ITEMS}",
            items.len()
        )));
    }
    let routes = crate::app::read_routes().with_state(state);
    let mut requests = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let uri: axum::http::Uri = item
            .path
            .parse()
            .ok()
            .filter(|u: &axum::http::Uri| {
                u.scheme().is_none() && u.authority().is_none() && u.path().starts_with('/')
            })
            .ok_or_else(|| {
                AppError::bad(format!(
                    "batch item {i}: path {:?} is not a path of this server",
                    crate::app::truncate(&item.path, 100)
                ))
            })?;
        if !crate::app::is_read_route(uri.path()) {
            return Err(AppError::bad(format!(
                "batch item {i}: {:?} is not a GET route of this server",
                crate::app::truncate(uri.path(), 100)
            )));
        }
        let request = axum::http::Request::get(uri)
            .body(axum::body::Body::empty())
            .map_err(|e| AppError::bad(format!("batch item {i}: {e}")))?;
        requests.push(request);
    }
    let answers = futures::future::join_all(requests.into_iter().map(|request| {
        let routes = routes.clone();
        async move {
            let response = match routes.oneshot(request).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            let status = response.status().as_u16();
            let bytes = axum::body::to_bytes(response.into_body(), 32 * 1024 * 1024)
                .await
                .unwrap_or_default();
            let body = serde_json::from_slice::<Value>(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
            json!({"status": status, "body": body})
        }
    }))
    .await;
    Ok(Json(answers).into_response())
}
