//! Shared state, the router, and starting the server.
//!
//! `AppState` is what every handler sees: the validated configuration and the source. The
//! router maps the HTTP surface of DESIGN.md onto the handlers in `tiles/`, `features/` and
//! here (health); anything else is a problem+json 404.

use crate::compat;
use crate::config::{Config, LayerConfig};
use crate::error::{AppError, AppResult};
use crate::network::Network;
use crate::network::routes as network;
use crate::source::Source;
use crate::source::memory::MemorySource;
use crate::source::postgis::{PostgisSource, connect};
use crate::tiles::cache::TileCache;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use std::sync::Arc;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{Any, CorsLayer};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// Validated configuration.
    pub config: Arc<Config>,
    /// Where features come from.
    pub source: Arc<dyn Source>,
    /// The network graph over the source's nodes and arcs.
    pub network: Arc<Network>,
    /// Encoded tiles of this instance.
    pub tiles: TileCache,
    /// Progress of the background warm-up started by `/api/workshop/status`.
    pub warm: Arc<crate::tiles::warm::WarmProgress>,
}

impl AppState {
    /// Bundles a configuration and a source, with an empty graph (see [`AppState::load`]).
    pub fn new(config: Config, source: Arc<dyn Source>) -> AppState {
        AppState {
            tiles: TileCache::new(config.cache_size_mb.saturating_mul(1024 * 1024)),
            config: Arc::new(config),
            source,
            network: Arc::new(Network::default()),
            warm: Arc::default(),
        }
    }

    /// Bundles a configuration and a source and builds the network graph from it.
    pub async fn load(config: Config, source: Arc<dyn Source>) -> AppResult<AppState> {
        let state = AppState::new(config, source);
        state
            .network
            .rebuild(state.source.as_ref(), &state.config)
            .await?;
        Ok(state)
    }

    /// Resolves a comma list of layer names, refusing unknown, repeated or too many names.
    pub fn layers(&self, list: &str) -> AppResult<Vec<&LayerConfig>> {
        let names: Vec<&str> = list.split(',').collect();
        if names.len() > self.config.max_layers_per_request {
            return Err(AppError::bad(format!(
                "{} layers requested; at most {} may be combined",
                names.len(),
                self.config.max_layers_per_request
            )));
        }
        let mut out: Vec<&LayerConfig> = Vec::with_capacity(names.len());
        for name in names {
            let layer = self.config.layer(name).ok_or_else(|| {
                AppError::not_found(format!(
                    "unknown layer {:?}; layers: {}",
                    truncate(name, 64),
                    self.config
                        .layers
                        .iter()
                        .map(|l| l.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
            if out.iter().any(|l| l.name == layer.name) {
                return Err(AppError::bad(format!("layer {name:?} is listed twice")));
            }
            out.push(layer);
        }
        Ok(out)
    }

    /// The base URL of links: the configured public URL, else the request's own host.
    pub fn base_url(&self, headers: &HeaderMap) -> String {
        if let Some(url) = &self.config.public_url {
            return url.trim_end_matches('/').to_string();
        }
        let host = headers
            .get("x-forwarded-host")
            .or_else(|| headers.get(axum::http::header::HOST))
            .and_then(|h| h.to_str().ok())
            .filter(|h| {
                !h.is_empty()
                    && h.len() < 256
                    && h.chars()
                        .all(|c| c.is_ascii_alphanumeric() || ".-:[]_".contains(c))
            })
            .unwrap_or("localhost");
        let proto = headers
            .get("x-forwarded-proto")
            .and_then(|h| h.to_str().ok())
            .filter(|p| *p == "https" || *p == "http")
            .unwrap_or("http");
        format!("{proto}://{host}")
    }
}

/// Cuts user text that is echoed in an error.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}...", s.chars().take(max).collect::<String>())
    }
}

/// Chooses the source the configuration asks for: PostGIS, a data folder, or the sample.
pub async fn build_source(config: &Config) -> anyhow::Result<Arc<dyn Source>> {
    if let Some(dir) = &config.data_dir {
        return Ok(Arc::new(MemorySource::from_dir(dir, &config.layers)?));
    }
    if let Some(url) = &config.database_url {
        let pool = connect(url, config.db_pool_size).await?;
        return Ok(Arc::new(PostgisSource::new(pool)));
    }
    Ok(Arc::new(MemorySource::sample(&config.layers)?))
}

/// Every GET route, without state: the router serves them and `POST /api/batch` replays them.
pub fn read_routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/catalog", get(crate::tiles::routes::catalog))
        .route("/tiles/{name}", get(crate::tiles::routes::tilejson))
        .route(
            "/tiles/{layers}/{z}/{x}/{y}",
            get(crate::tiles::routes::tile),
        )
        .route("/collections/{layer}/items", get(crate::features::items))
        .route("/network/nodes/{code}", get(network::node_summary))
        .route("/network/nodes/{code}/upstream", get(network::upstream))
        .route("/network/nodes/{code}/downstream", get(network::downstream))
        .route("/network/path", get(network::find_path))
        .route("/network/arcs/{code}", get(network::arc))
        .route("/api/health", get(compat::health))
        .route("/api/nodes", get(compat::nodes))
        .route("/api/arcs", get(compat::arcs))
        .route("/api/nodes/spatial", get(compat::nodes_spatial))
        .route("/api/nodes/optimized", get(compat::nodes_optimized))
        .route("/api/search", get(compat::search))
        .route("/api/nodes/{id}/analysis", get(compat::node_analysis_route))
        .route("/api/arcs/{id}/analysis", get(compat::arc_analysis))
        .route("/api/nodes/{id}/network", get(compat::node_network_route))
        .route(
            "/api/network/analysis/node/{id}",
            get(compat::network_analysis_node),
        )
        .route("/api/workshop/status", get(compat::workshop_status))
        .route("/metrics", get(metrics))
        .fallback(not_found)
}

/// Whether a path names a GET route of [`read_routes`] (used to vet batch items).
pub fn is_read_route(path: &str) -> bool {
    static PATTERNS: std::sync::OnceLock<matchit::Router<()>> = std::sync::OnceLock::new();
    let patterns = PATTERNS.get_or_init(|| {
        let mut r = matchit::Router::new();
        for p in READ_PATTERNS {
            // The patterns are constants of this file; a clash would be a bug caught by tests.
            let _ = r.insert(*p, ());
        }
        r
    });
    patterns.at(path).is_ok()
}

/// The path patterns of [`read_routes`], in the same order.
pub const READ_PATTERNS: &[&str] = &[
    "/health",
    "/ready",
    "/catalog",
    "/tiles/{name}",
    "/tiles/{layers}/{z}/{x}/{y}",
    "/collections/{layer}/items",
    "/network/nodes/{code}",
    "/network/nodes/{code}/upstream",
    "/network/nodes/{code}/downstream",
    "/network/path",
    "/network/arcs/{code}",
    "/api/health",
    "/api/nodes",
    "/api/arcs",
    "/api/nodes/spatial",
    "/api/nodes/optimized",
    "/api/search",
    "/api/nodes/{id}/analysis",
    "/api/arcs/{id}/analysis",
    "/api/nodes/{id}/network",
    "/api/network/analysis/node/{id}",
    "/api/workshop/status",
    "/metrics",
];

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::HEAD, Method::POST, Method::OPTIONS])
        .allow_headers(Any);
    read_routes()
        .route("/api/batch", axum::routing::post(compat::batch))
        .layer(CompressionLayer::new())
        .layer(cors)
        .with_state(state)
}

/// The process-wide Prometheus recorder (installed once, shared by every server in a process).
fn prometheus() -> Option<&'static metrics_exporter_prometheus::PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<Option<metrics_exporter_prometheus::PrometheusHandle>> =
        std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            metrics_exporter_prometheus::PrometheusBuilder::new()
                .install_recorder()
                .ok()
        })
        .as_ref()
}

/// `GET /metrics`: Prometheus text; the tile cache by layer set.
async fn metrics(State(state): State<AppState>) -> AppResult<Response> {
    let handle =
        prometheus().ok_or_else(|| AppError::Internal("metrics recorder unavailable".into()))?;
    let (tiles, bytes) = state.tiles.usage().await;
    metrics::gauge!("tile_cache_entries").set(tiles as f64);
    metrics::gauge!("tile_cache_bytes").set(bytes as f64);
    metrics::gauge!("tile_cache_capacity_bytes")
        .set((state.config.cache_size_mb * 1024 * 1024) as f64);
    for (layers, c) in state.tiles.counters() {
        let l = layers.to_string();
        let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        metrics::counter!("tile_cache_hits_total", "layers" => l.clone()).absolute(load(&c.hits));
        metrics::counter!("tile_cache_misses_total", "layers" => l.clone())
            .absolute(load(&c.misses));
        metrics::counter!("tile_cache_evictions_total", "layers" => l.clone())
            .absolute(load(&c.evictions));
        metrics::counter!("tile_cache_invalidations_total", "layers" => l)
            .absolute(load(&c.invalidations));
    }
    let graph = state.network.graph();
    metrics::gauge!("network_graph_nodes").set(graph.nodes.len() as f64);
    metrics::gauge!("network_graph_arcs").set(graph.arcs.len() as f64);
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response())
}

async fn not_found() -> AppError {
    AppError::not_found("no route here; see /catalog for what this server serves")
}

async fn health(State(state): State<AppState>) -> impl IntoResponse {
    Json(json!({ "status": "ok", "source": state.source.name() }))
}

async fn ready(State(state): State<AppState>) -> AppResult<impl IntoResponse> {
    state.source.ready().await?;
    Ok(Json(
        json!({ "status": "ready", "source": state.source.name() }),
    ))
}

/// Whether this configuration serves PostGIS, and so listens for its changes.
fn config_listens(config: &Config) -> bool {
    config.data_dir.is_none() && config.database_url.is_some()
}

/// Serves until the process is told to stop.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let source = build_source(&config).await?;
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    tracing::info!(
        listen = %config.listen,
        source = source.name(),
        "serving"
    );
    let state = AppState::load(config, source)
        .await
        .map_err(|e| anyhow::anyhow!("cannot build the network graph: {e}"))?;
    if config_listens(&state.config) {
        if let Some(url) = &state.config.database_url {
            crate::changes::spawn(state.clone(), url.clone());
        }
    }
    let app = router(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_vets_paths_against_the_read_routes() {
        let mut m = matchit::Router::new();
        for p in READ_PATTERNS {
            m.insert(*p, ()).expect("patterns do not clash");
        }
        assert!(is_read_route("/tiles/nodes/1/0/0.mvt"));
        assert!(is_read_route("/network/nodes/SHSTA/downstream"));
        assert!(is_read_route("/api/nodes/81/network"));
        assert!(!is_read_route("/api/batch"));
        assert!(!is_read_route("/nope"));
    }
}
