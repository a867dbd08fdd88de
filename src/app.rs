//! Shared state, the router, and starting the server.
//!
//! `AppState` is what every handler sees: the validated configuration and the source. The
//! router maps the HTTP surface of DESIGN.md onto the handlers in `tiles/`, `features/` and
//! here (health); anything else is a problem+json 404.

use crate::config::{Config, LayerConfig};
use crate::error::{AppError, AppResult};
use crate::source::Source;
use crate::source::memory::MemorySource;
use crate::source::postgis::{PostgisSource, connect};
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Method};
use axum::response::IntoResponse;
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
}

impl AppState {
    /// Bundles a configuration and a source.
    pub fn new(config: Config, source: Arc<dyn Source>) -> AppState {
        AppState {
            config: Arc::new(config),
            source,
        }
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

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    let cors = CorsLayer::new().allow_origin(Any).allow_methods([
        Method::GET,
        Method::HEAD,
        Method::OPTIONS,
    ]);
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
        .fallback(not_found)
        .layer(CompressionLayer::new())
        .layer(cors)
        .with_state(state)
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
    let app = router(AppState::new(config, source));
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
