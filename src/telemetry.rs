//! What operators see: one span and one log line per request, request ids, and the
//! Prometheus metrics of `/metrics`.
//!
//! Request metrics are recorded by [`track`], a middleware on every route; cache, pool and
//! graph figures are read when `/metrics` is scraped.

use crate::app::AppState;
use crate::error::{AppError, AppResult};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tracing::Instrument;

/// The request id header, read from clients and proxies and returned on every answer.
pub const REQUEST_ID: &str = "x-request-id";

/// Latency buckets in seconds, from a cache hit to a request timeout.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The process-wide Prometheus recorder (installed once, shared by every server in a process).
pub fn prometheus() -> Option<&'static PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<Option<PrometheusHandle>> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
                .ok()?
                .install_recorder()
                .ok()
        })
        .as_ref()
}

/// Whether a client's request id is safe to echo and log: short visible ASCII.
fn usable_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic())
}

/// The route template of a request (`/tiles/{layers}/{z}/{x}/{y}`), so metrics stay few.
fn route_of(req: &Request) -> String {
    match req.extensions().get::<MatchedPath>() {
        Some(p) if p.as_str().starts_with("/web/") => "/web/{path}".into(),
        Some(p) => p.as_str().to_string(),
        None => "unmatched".into(),
    }
}

/// Middleware: a span per request (method, route template, request id), the request's metrics,
/// one log line with status and latency, and the request id on the answer.
pub async fn track(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| usable_id(v))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let route = route_of(&req);
    // Only standard methods become label values, so clients cannot grow the metric set.
    let method: &'static str = match req.method().as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "OPTIONS" => "OPTIONS",
        _ => "OTHER",
    };
    let span = tracing::info_span!("request", method, %route, request_id = %id);
    let mut response = next.run(req).instrument(span.clone()).await;
    let status = response.status().as_u16();
    let elapsed = start.elapsed().as_secs_f64();
    metrics::counter!("http_requests_total", "method" => method, "route" => route.clone(),
        "status" => status.to_string())
    .increment(1);
    metrics::histogram!("http_request_duration_seconds", "route" => route).record(elapsed);
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, v);
    }
    span.in_scope(|| {
        tracing::info!(
            status,
            latency_ms = (elapsed * 1e6).round() / 1e3,
            "request"
        )
    });
    response
}

/// Records a query's duration and warns when it is slower than `slow_ms`.
pub fn record_query(
    kind: &'static str,
    started: Instant,
    slow_ms: u64,
    what: impl FnOnce() -> String,
) {
    let elapsed = started.elapsed();
    metrics::histogram!("db_query_duration_seconds", "query" => kind).record(elapsed.as_secs_f64());
    if elapsed.as_millis() as u64 >= slow_ms {
        tracing::warn!(
            query = kind,
            target = %what(),
            elapsed_ms = elapsed.as_millis() as u64,
            threshold_ms = slow_ms,
            "slow query"
        );
    }
}

/// Counts bytes of tiles sent, by format and coding.
pub fn tile_bytes(format: &'static str, coding: &'static str, bytes: usize) {
    metrics::counter!("tile_bytes_served_total", "format" => format, "coding" => coding)
        .increment(bytes as u64);
}

fn load(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

/// `GET /metrics`: Prometheus text.
pub async fn metrics(State(state): State<AppState>) -> AppResult<Response> {
    let handle =
        prometheus().ok_or_else(|| AppError::Internal("metrics recorder unavailable".into()))?;
    let (tiles, bytes) = state.tiles.usage().await;
    metrics::gauge!("tile_cache_entries").set(tiles as f64);
    metrics::gauge!("tile_cache_bytes").set(bytes as f64);
    metrics::gauge!("tile_cache_capacity_bytes")
        .set((state.config.cache_size_mb * 1024 * 1024) as f64);
    for (layers, c) in state.tiles.counters() {
        let l = layers.to_string();
        metrics::counter!("tile_cache_hits_total", "layers" => l.clone()).absolute(load(&c.hits));
        metrics::counter!("tile_cache_misses_total", "layers" => l.clone())
            .absolute(load(&c.misses));
        metrics::counter!("tile_cache_evictions_total", "layers" => l.clone())
            .absolute(load(&c.evictions));
        metrics::counter!("tile_cache_invalidations_total", "layers" => l)
            .absolute(load(&c.invalidations));
    }
    metrics::counter!("tile_source_generations_total").absolute(load(&state.source_tiles));
    if let Some(shared) = &state.shared {
        metrics::counter!("tile_cache_redis_hits_total").absolute(load(&shared.hits));
        metrics::counter!("tile_cache_redis_misses_total").absolute(load(&shared.misses));
    }
    if let Some(pool) = state.source.pool_status() {
        metrics::gauge!("db_pool_max_connections").set(pool.max as f64);
        metrics::gauge!("db_pool_connections", "state" => "open").set(pool.size as f64);
        metrics::gauge!("db_pool_connections", "state" => "idle").set(pool.idle as f64);
        metrics::gauge!("db_pool_connections", "state" => "in_use")
            .set(pool.size.saturating_sub(pool.idle) as f64);
    }
    let graph = state.network.graph();
    metrics::gauge!("network_graph_nodes").set(graph.nodes.len() as f64);
    metrics::gauge!("network_graph_arcs").set(graph.arcs.len() as f64);
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_from_clients_are_vetted() {
        assert!(usable_id("abc-123"));
        assert!(!usable_id(""));
        assert!(!usable_id("a b"));
        assert!(!usable_id("a\nb"));
        assert!(!usable_id(&"x".repeat(129)));
    }
}
