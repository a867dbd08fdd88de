//! Handlers of `/network/...`: parse the request, call a graph function, shape JSON or GeoJSON.

use super::graph::{Direction, Graph, Reach};
use crate::app::AppState;
use crate::error::{AppError, AppResult};
use crate::tiles::routes::{geojson_response, path};
use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use std::collections::HashSet;

/// Largest `max_depth` the `/network` traversals accept.
pub const MAX_DEPTH: u32 = 1000;

/// Query parameters, checked against the names a route accepts.
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Parses a raw query string, refusing names not in `allowed` and NUL anywhere.
    pub fn parse(raw: Option<&str>, allowed: &[&str]) -> AppResult<Params> {
        let pairs = crate::app::query_pairs(raw)?;
        for (k, _) in &pairs {
            if !allowed.contains(&k.as_str()) {
                return Err(AppError::bad(format!(
                    "unknown query parameter {:?}; this route takes: {}",
                    crate::app::truncate(k, 64),
                    allowed.join(", ")
                )));
            }
        }
        Ok(Params(pairs))
    }

    /// The last value given for `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// An integer within `min..=max`, or `default` when absent.
    pub fn int(
        &self,
        name: &str,
        min: i64,
        max: i64,
        default: Option<i64>,
    ) -> AppResult<Option<i64>> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => {
                let n: i64 = v.trim().parse().map_err(|_| {
                    AppError::bad(format!(
                        "{name} must be an integer from {min} to {max}; got {:?}",
                        crate::app::truncate(v, 32)
                    ))
                })?;
                if n < min || n > max {
                    return Err(AppError::bad(format!(
                        "{name} must be from {min} to {max}; got {n}"
                    )));
                }
                Ok(Some(n))
            }
        }
    }

    /// A boolean (`true`/`false`), or `default` when absent.
    pub fn bool(&self, name: &str, default: bool) -> AppResult<bool> {
        match self.get(name) {
            None => Ok(default),
            Some("true") | Some("1") => Ok(true),
            Some("false") | Some("0") => Ok(false),
            Some(_) => Err(AppError::bad(format!("{name} must be true or false"))),
        }
    }

    /// Whether `f=geojson` was asked (`f=json` or absent: JSON).
    pub fn wants_geojson(&self) -> AppResult<bool> {
        match self.get("f") {
            None | Some("json") => Ok(false),
            Some("geojson") => Ok(true),
            Some(_) => Err(AppError::bad("f must be json or geojson")),
        }
    }
}

/// Finds a node by short code or answers 404.
pub fn node_or_404(g: &Graph, code: &str) -> AppResult<u32> {
    g.node_by_code(code).ok_or_else(|| {
        AppError::not_found(format!(
            "no node with short_code {:?}",
            crate::app::truncate(code, 64)
        ))
    })
}

/// The compact JSON of a node.
pub fn node_json(g: &Graph, n: u32) -> Value {
    let node = &g.nodes[n as usize];
    json!({"id": node.id, "short_code": node.code, "name": node.name, "node_type": node.node_type})
}

/// The compact JSON of an arc.
pub fn arc_json(g: &Graph, a: u32) -> Value {
    let arc = &g.arcs[a as usize];
    json!({
        "id": arc.id,
        "short_code": arc.code,
        "name": arc.name,
        "arc_type": arc.arc_type,
        "from_node": g.nodes[arc.from as usize].code,
        "to_node": g.nodes[arc.to as usize].code,
        "length_m": arc.length_m,
    })
}

/// Nodes (with `depth`) and arcs of a walk as a GeoJSON FeatureCollection.
pub fn reach_geojson(g: &Graph, nodes: &[(u32, Option<u32>)], arcs: &[u32]) -> String {
    let mut features = Vec::with_capacity(nodes.len() + arcs.len());
    for &(n, depth) in nodes {
        let node = &g.nodes[n as usize];
        let mut props: Map<String, Value> = node.properties.clone();
        props.insert("kind".into(), json!("node"));
        if let Some(d) = depth {
            props.insert("depth".into(), json!(d));
        }
        features.push(crate::source::feature_json(
            None,
            node.id,
            &node.geometry,
            &props,
        ));
    }
    for &a in arcs {
        let arc = &g.arcs[a as usize];
        let mut props = arc.properties.clone();
        props.insert("kind".into(), json!("arc"));
        features.push(crate::source::feature_json(
            None,
            arc.id,
            &arc.geometry,
            &props,
        ));
    }
    crate::tiles::routes::feature_collection(&features, None)
}

/// Parses `arc_types=CH,D` into a set.
fn arc_types(p: &Params) -> Option<HashSet<String>> {
    p.get("arc_types").map(|v| {
        v.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    })
}

/// `GET /network/nodes/{code}`: degrees, reach, reservoirs each way, component.
pub async fn node_summary(
    State(state): State<AppState>,
    code: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> AppResult<Response> {
    let code = path(code)?;
    Params::parse(raw.as_deref(), &[])?;
    let g = state.network.graph();
    let n = node_or_404(&g, &code)?;
    let s = g.summary(n);
    let reservoirs = |list: &[u32]| {
        let total: f64 = list
            .iter()
            .filter_map(|&r| g.nodes[r as usize].capacity_taf)
            .sum();
        json!({
            "count": list.len(),
            "total_capacity_taf": total,
            "nodes": list.iter().map(|&r| {
                let node = &g.nodes[r as usize];
                json!({"id": node.id, "short_code": node.code, "name": node.name, "capacity_taf": node.capacity_taf})
            }).collect::<Vec<_>>(),
        })
    };
    let node = &g.nodes[n as usize];
    Ok(Json(json!({
        "node": node_json(&g, n),
        "properties": node.properties,
        "in_degree": s.in_degree,
        "out_degree": s.out_degree,
        "upstream_count": s.upstream_count,
        "downstream_count": s.downstream_count,
        "upstream_reservoirs": reservoirs(&s.upstream_reservoirs),
        "downstream_reservoirs": reservoirs(&s.downstream_reservoirs),
        "component": {"id": s.component, "size": s.component_size},
    }))
    .into_response())
}

/// The answer of an upstream or downstream walk.
pub fn reach_response(
    g: &Graph,
    origin: u32,
    dir: Direction,
    max_depth: Option<u32>,
    reach: &Reach,
    geojson: bool,
) -> Response {
    if geojson {
        let nodes: Vec<(u32, Option<u32>)> = reach
            .visits
            .iter()
            .map(|v| (v.node, Some(v.depth)))
            .collect();
        return geojson_response(reach_geojson(g, &nodes, &reach.arcs));
    }
    let nodes: Vec<Value> = reach
        .visits
        .iter()
        .map(|v| {
            let mut j = node_json(g, v.node);
            j["depth"] = json!(v.depth);
            j
        })
        .collect();
    let arcs: Vec<Value> = reach.arcs.iter().map(|&a| arc_json(g, a)).collect();
    Json(json!({
        "origin": node_json(g, origin),
        "direction": dir.name(),
        "max_depth": max_depth,
        "node_count": nodes.len(),
        "arc_count": arcs.len(),
        "nodes": nodes,
        "arcs": arcs,
    }))
    .into_response()
}

async fn walk(
    state: AppState,
    code: String,
    raw: Option<String>,
    dir: Direction,
) -> AppResult<Response> {
    let p = Params::parse(raw.as_deref(), &["max_depth", "arc_types", "f"])?;
    let max_depth = p
        .int("max_depth", 1, MAX_DEPTH as i64, None)?
        .map(|d| d as u32);
    let types = arc_types(&p);
    let geojson = p.wants_geojson()?;
    let g = state.network.graph();
    let n = node_or_404(&g, &code)?;
    let reach = g.traverse(n, dir, max_depth, types.as_ref());
    Ok(reach_response(&g, n, dir, max_depth, &reach, geojson))
}

/// `GET /network/nodes/{code}/upstream`.
pub async fn upstream(
    State(state): State<AppState>,
    code: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> AppResult<Response> {
    walk(state, path(code)?, raw, Direction::Upstream).await
}

/// `GET /network/nodes/{code}/downstream`.
pub async fn downstream(
    State(state): State<AppState>,
    code: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> AppResult<Response> {
    walk(state, path(code)?, raw, Direction::Downstream).await
}

/// `GET /network/path?from=&to=&weight=hops|length`: "no path" is an answer (`found: false`).
pub async fn find_path(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> AppResult<Response> {
    let p = Params::parse(raw.as_deref(), &["from", "to", "weight", "f"])?;
    let from = p
        .get("from")
        .ok_or_else(|| AppError::bad("from is required (a node short_code)"))?;
    let to = p
        .get("to")
        .ok_or_else(|| AppError::bad("to is required (a node short_code)"))?;
    let weight = p.get("weight").unwrap_or("hops");
    let geojson = p.wants_geojson()?;
    let g = state.network.graph();
    let (a, b) = (node_or_404(&g, from)?, node_or_404(&g, to)?);
    let found = match weight {
        "hops" => g.path_hops(a, b),
        "length" => g.path_length(a, b),
        _ => return Err(AppError::bad("weight must be hops or length")),
    };
    if geojson {
        let (nodes, arcs) = match &found {
            Some(path) => (
                path.nodes
                    .iter()
                    .enumerate()
                    .map(|(i, &n)| (n, Some(i as u32)))
                    .collect(),
                path.arcs.clone(),
            ),
            None => (Vec::new(), Vec::new()),
        };
        return Ok(geojson_response(reach_geojson(&g, &nodes, &arcs)));
    }
    Ok(Json(match found {
        Some(path) => json!({
            "from": node_json(&g, a),
            "to": node_json(&g, b),
            "weight": weight,
            "found": true,
            "hops": path.arcs.len(),
            "length_m": path.length_m,
            "nodes": path.nodes.iter().map(|&n| node_json(&g, n)).collect::<Vec<_>>(),
            "arcs": path.arcs.iter().map(|&x| arc_json(&g, x)).collect::<Vec<_>>(),
        }),
        None => json!({
            "from": node_json(&g, a),
            "to": node_json(&g, b),
            "weight": weight,
            "found": false,
            "hops": null,
            "length_m": null,
            "nodes": [],
            "arcs": [],
        }),
    })
    .into_response())
}

/// `GET /network/arcs/{code}`: an arc with its two nodes.
pub async fn arc(
    State(state): State<AppState>,
    code: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> AppResult<Response> {
    let code = path(code)?;
    Params::parse(raw.as_deref(), &[])?;
    let g = state.network.graph();
    let a = g.arc_by_code(&code).ok_or_else(|| {
        AppError::not_found(format!(
            "no arc with short_code {:?}",
            crate::app::truncate(&code, 64)
        ))
    })?;
    let arc = &g.arcs[a as usize];
    Ok(Json(json!({
        "arc": arc_json(&g, a),
        "properties": arc.properties,
        "from": node_json(&g, arc.from),
        "to": node_json(&g, arc.to),
    }))
    .into_response())
}
