//! Live change: each instance LISTENs for the database's change notifications and keeps its
//! tile cache and network graph true to the data, with no restart and no TTL.
//!
//! Migrations add triggers that send `{table, op, bbox}` on [`CHANNEL`] for every changed row.
//! One task per instance holds a dedicated connection (not a pool one), drops the cached tiles
//! whose bounds touch each box, and asks for a graph rebuild when nodes or arcs change
//! (coalesced, so an import of a thousand rows rebuilds once). When the connection drops it
//! reconnects with backoff and, since notifications may have been missed meanwhile, drops the
//! whole cache and rebuilds the graph.

use crate::app::AppState;
use crate::network::{ARC_LAYER, NODE_LAYER};
use crate::tiles::grid::Bounds;
use serde::Deserialize;
use sqlx::postgres::PgListener;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// The notification channel the triggers send on.
pub const CHANNEL: &str = "coeqwal_changes";

/// One notification's payload.
#[derive(Debug, Deserialize)]
pub struct Change {
    /// Table that changed.
    pub table: String,
    /// INSERT, UPDATE, DELETE or TRUNCATE.
    #[serde(default)]
    pub op: String,
    /// Box of the old and new geometry (lon/lat), absent for TRUNCATE.
    #[serde(default)]
    pub bbox: Option<[Option<f64>; 4]>,
}

impl Change {
    /// The changed box, if the notification carries a complete one.
    pub fn bounds(&self) -> Option<Bounds> {
        match self.bbox {
            Some([Some(minx), Some(miny), Some(maxx), Some(maxy)]) => Some(Bounds {
                minx,
                miny,
                maxx,
                maxy,
            }),
            _ => None,
        }
    }
}

/// Applies one change to this instance: drop touched tiles; flag a graph rebuild if needed.
pub fn apply(state: &AppState, change: &Change, rebuild: &Notify) {
    let bounds = change.bounds();
    state
        .data_version
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    state.tiles.invalidate_bbox(bounds);
    if let Some(shared) = state.shared.clone() {
        let (max_zoom, tiles) = (state.config.max_zoom, state.tiles.clone());
        tokio::spawn(async move {
            // Memory again after Redis: a request in between may have copied a stale Redis
            // tile into memory. Once more a moment later, for a tile generated from the old
            // data meanwhile.
            shared.invalidate(bounds, max_zoom).await;
            tiles.invalidate_bbox(bounds);
            tokio::time::sleep(Duration::from_secs(1)).await;
            shared.invalidate(bounds, max_zoom).await;
            tiles.invalidate_bbox(bounds);
        });
    }
    let graph_tables: Vec<&str> = [NODE_LAYER, ARC_LAYER]
        .iter()
        .filter_map(|l| state.config.layer(l))
        .map(|l| l.table.as_str())
        .collect();
    if graph_tables.contains(&change.table.as_str()) {
        rebuild.notify_one();
    }
    tracing::debug!(table = %change.table, op = %change.op, ?bounds, "change applied");
}

/// Starts the listener and the graph rebuilder; they run until the process ends.
pub fn spawn(state: AppState, database_url: String) {
    let rebuild = Arc::new(Notify::new());
    tokio::spawn(rebuild_graph(state.clone(), rebuild.clone()));
    tokio::spawn(listen(state, database_url, rebuild));
}

/// Rebuilds the graph when asked, coalescing requests that arrive close together.
async fn rebuild_graph(state: AppState, rebuild: Arc<Notify>) {
    loop {
        rebuild.notified().await;
        // Let a burst of changes (an import, a bulk update) finish first.
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Err(e) = state
            .network
            .rebuild(state.source.as_ref(), &state.config)
            .await
        {
            tracing::warn!(error = %e, "graph rebuild failed; will retry on the next change");
        }
    }
}

async fn listen(state: AppState, url: String, rebuild: Arc<Notify>) {
    let mut backoff = Duration::from_millis(100);
    let mut first = true;
    loop {
        let mut listener = match connect(&url).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %crate::source::postgis::redact(&e.to_string()), ?backoff, "LISTEN connection failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        if !first {
            tracing::info!(
                "LISTEN connection restored; dropping cached tiles and rebuilding the graph"
            );
            state.tiles.invalidate_bbox(None);
            state
                .data_version
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if let Some(shared) = state.shared.clone() {
                tokio::spawn(async move { shared.invalidate(None, 0).await });
            }
            rebuild.notify_one();
        }
        first = false;
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => match serde_json::from_str::<Change>(n.payload()) {
                    Ok(change) => apply(&state, &change, &rebuild),
                    Err(e) => {
                        tracing::warn!(error = %e, payload = n.payload(), "unreadable change notification")
                    }
                },
                Ok(None) => {
                    tracing::warn!("LISTEN connection lost; reconnecting");
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %crate::source::postgis::redact(&e.to_string()), "LISTEN connection failed; reconnecting");
                    break;
                }
            }
        }
    }
}

async fn connect(url: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}
