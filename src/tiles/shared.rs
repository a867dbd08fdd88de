//! The optional shared second level of the tile cache: Redis (`REDIS_URL`).
//!
//! Tiles missed in memory are looked up here before the source, and stored here after
//! generation, so a fleet of instances generates each tile once. Redis is a help, never a
//! dependency: every call has a short timeout, a failure counts as a miss, and the connection
//! is retried at most once a second, so the server keeps serving when Redis goes away.
//!
//! Layout: one hash per tile, `{prefix}:{z}/{x}/{y}`, with a field per layer set and format.
//! A change deletes the hashes of the tiles its box touches at every zoom, so invalidation
//! reaches every instance's shared level as it reaches their memory.

use crate::tiles::cache::{Format, TileKey};
use crate::tiles::grid::{Bounds, lonlat_to_tile};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// How long one Redis call may take before it counts as a miss.
const CALL_TIMEOUT: Duration = Duration::from_millis(200);
/// Entries expire after a day, a backstop for a store that raced an invalidation.
const ENTRY_TTL_SECS: i64 = 24 * 3600;
/// Above this many tiles at one zoom, a change drops every shared tile instead.
const MAX_KEYS_PER_ZOOM: u64 = 4096;

/// A Redis second level.
pub struct SharedCache {
    client: redis::Client,
    conn: Mutex<(Option<ConnectionManager>, Option<Instant>)>,
    prefix: String,
    /// Lookups answered by Redis.
    pub hits: AtomicU64,
    /// Lookups Redis could not answer (absent, or Redis unavailable).
    pub misses: AtomicU64,
}

impl SharedCache {
    /// Prepares a client; connects on first use.
    pub fn new(url: &str) -> anyhow::Result<SharedCache> {
        Ok(SharedCache {
            client: redis::Client::open(url).map_err(|e| anyhow::anyhow!("bad REDIS_URL: {e}"))?,
            conn: Mutex::new((None, None)),
            prefix: "cnapi:tile".into(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        })
    }

    async fn connection(&self) -> Option<ConnectionManager> {
        let mut guard = self.conn.lock().await;
        if let Some(c) = &guard.0 {
            return Some(c.clone());
        }
        if guard
            .1
            .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return None;
        }
        guard.1 = Some(Instant::now());
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CALL_TIMEOUT))
            .set_response_timeout(Some(CALL_TIMEOUT))
            .set_number_of_retries(1);
        match tokio::time::timeout(
            CALL_TIMEOUT * 2,
            ConnectionManager::new_with_config(self.client.clone(), config),
        )
        .await
        {
            Ok(Ok(c)) => {
                guard.0 = Some(c.clone());
                Some(c)
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "Redis unavailable; serving without the shared cache");
                None
            }
            Err(_) => None,
        }
    }

    fn hash_key(&self, z: u8, x: u32, y: u32) -> String {
        format!("{}:{z}/{x}/{y}", self.prefix)
    }

    fn field(key: &TileKey) -> String {
        let f = match key.format {
            Format::Mvt => "mvt",
            Format::GeoJson => "geojson",
        };
        format!("{}|{f}", key.layers)
    }

    /// The stored tile, if Redis has it and answers in time.
    pub async fn get(&self, key: &TileKey) -> Option<Vec<u8>> {
        let found = match self.connection().await {
            Some(mut c) => {
                let h = self.hash_key(key.tile.z, key.tile.x, key.tile.y);
                tokio::time::timeout(
                    CALL_TIMEOUT,
                    c.hget::<_, _, Option<Vec<u8>>>(h, Self::field(key)),
                )
                .await
                .ok()
                .and_then(Result::ok)
                .flatten()
            }
            None => None,
        };
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Stores a generated tile (best effort).
    pub async fn put(&self, key: &TileKey, bytes: &[u8]) {
        let Some(mut c) = self.connection().await else {
            return;
        };
        let h = self.hash_key(key.tile.z, key.tile.x, key.tile.y);
        let mut pipe = redis::pipe();
        pipe.hset(&h, Self::field(key), bytes)
            .ignore()
            .expire(&h, ENTRY_TTL_SECS)
            .ignore();
        let _ = tokio::time::timeout(CALL_TIMEOUT, pipe.query_async::<()>(&mut c)).await;
    }

    /// Deletes the shared tiles whose bounds (with buffer) touch `bbox`, at zooms up to
    /// `max_zoom`; `None`, or a box too large to list, deletes every shared tile.
    pub async fn invalidate(&self, bbox: Option<Bounds>, max_zoom: u8) {
        let Some(mut c) = self.connection().await else {
            return;
        };
        let mut keys = Vec::new();
        let mut everything = bbox.is_none();
        if let Some(b) = bbox {
            for z in 0..=max_zoom {
                let (x0, y0) = lonlat_to_tile(b.minx, b.maxy, z);
                let (x1, y1) = lonlat_to_tile(b.maxx, b.miny, z);
                let max = ((1u64 << z) - 1) as u32;
                let (x0, y0, x1, y1) = (
                    x0.saturating_sub(1),
                    y0.saturating_sub(1),
                    (x1 + 1).min(max),
                    (y1 + 1).min(max),
                );
                if (x1 - x0 + 1) as u64 * (y1 - y0 + 1) as u64 > MAX_KEYS_PER_ZOOM {
                    everything = true;
                    break;
                }
                for x in x0..=x1 {
                    for y in y0..=y1 {
                        keys.push(self.hash_key(z, x, y));
                    }
                }
            }
        }
        if everything {
            let pattern = format!("{}:*", self.prefix);
            let found: Vec<String> = match c.scan_match::<_, String>(pattern).await {
                Ok(iter) => {
                    use futures::StreamExt;
                    iter.filter_map(|k| async move { k.ok() }).collect().await
                }
                Err(_) => return,
            };
            keys = found;
        }
        for chunk in keys.chunks(512) {
            let _ = tokio::time::timeout(CALL_TIMEOUT, c.del::<_, ()>(chunk)).await;
        }
    }
}
