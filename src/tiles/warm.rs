//! Pre-warming: fill tile caches over the data's bounds before a workshop starts.
//!
//! Two ways in: `/api/workshop/status` warms this instance's cache in the background (and
//! reports progress), and the `warm` subcommand asks a running server for every tile over HTTP,
//! which fills that server's cache (and the shared Redis level, when there is one).

use crate::app::AppState;
use crate::config::LayerConfig;
use crate::error::{AppError, AppResult};
use crate::tiles::cache::{Format, TileKey};
use crate::tiles::grid::{Bounds, TileCoord};
use futures::StreamExt;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Parses `A-B` (or a single zoom) into a zoom range within `0..=max`.
pub fn parse_zooms(text: &str, max: u8) -> AppResult<RangeInclusive<u8>> {
    let bad = || {
        AppError::bad(format!(
            "zooms must be like 0-12 (each 0 to {max}); got {text:?}"
        ))
    };
    let (a, b) = match text.split_once('-') {
        Some((a, b)) => (a.trim(), b.trim()),
        None => (text.trim(), text.trim()),
    };
    let a: u8 = a.parse().map_err(|_| bad())?;
    let b: u8 = b.parse().map_err(|_| bad())?;
    if a > b || b > max {
        return Err(bad());
    }
    Ok(a..=b)
}

/// Every tile over `bounds` at the given zooms.
pub fn plan(bounds: &Bounds, zooms: RangeInclusive<u8>) -> Vec<TileCoord> {
    zooms.flat_map(|z| TileCoord::covering(bounds, z)).collect()
}

/// Progress of this instance's background warm-up.
#[derive(Default)]
pub struct WarmProgress {
    /// A warm-up is running.
    pub running: AtomicBool,
    /// Tiles to warm in the current (or last) run.
    pub total: AtomicU64,
    /// Tiles done in the current (or last) run.
    pub done: AtomicU64,
}

/// Warms this instance's cache for `layers` over their extent at `zooms`, 8 tiles at a time;
/// returns at once if a warm-up is already running.
pub async fn warm_here(
    state: AppState,
    layers: Vec<LayerConfig>,
    zooms: RangeInclusive<u8>,
    progress: Arc<WarmProgress>,
) {
    if progress.running.swap(true, Ordering::SeqCst) {
        return;
    }
    let mut stats = Vec::new();
    for l in &layers {
        if let Ok(s) = state.source.stats(l).await {
            stats.push(s);
        }
    }
    let Some(bounds) = crate::tiles::tilejson::union_bounds(&stats) else {
        progress.running.store(false, Ordering::SeqCst);
        return;
    };
    let tiles = plan(&bounds, zooms);
    progress.total.store(tiles.len() as u64, Ordering::SeqCst);
    progress.done.store(0, Ordering::SeqCst);
    let names: Arc<str> = layers
        .iter()
        .map(|l| l.name.as_str())
        .collect::<Vec<_>>()
        .join(",")
        .into();
    let layers = &layers;
    futures::stream::iter(tiles)
        .for_each_concurrent(8, |tile| {
            let (state, names, progress) = (state.clone(), names.clone(), progress.clone());
            async move {
                let refs: Vec<&LayerConfig> = layers.iter().collect();
                let key = TileKey {
                    layers: names,
                    tile,
                    format: Format::Mvt,
                };
                let _ = crate::tiles::routes::cached_tile(&state, &refs, key).await;
                progress.done.fetch_add(1, Ordering::Relaxed);
            }
        })
        .await;
    progress.running.store(false, Ordering::SeqCst);
}

/// What a remote warm-up did.
#[derive(Debug, Default)]
pub struct WarmSummary {
    /// Tiles requested.
    pub tiles: u64,
    /// Tiles with features (200).
    pub with_data: u64,
    /// Empty tiles (204).
    pub empty: u64,
    /// Requests that failed.
    pub failed: u64,
    /// Bytes received.
    pub bytes: u64,
}

/// Asks the server at `base` for every tile of `layers` (a comma list) over `bbox` (or the
/// layers' extent from `/catalog`) at `zooms`, 8 at a time.
pub async fn warm_remote(
    base: &str,
    layers: &str,
    bbox: Option<Bounds>,
    zooms: RangeInclusive<u8>,
    show_progress: bool,
) -> anyhow::Result<WarmSummary> {
    let base = base.trim_end_matches('/');
    let client = reqwest::Client::new();
    let bounds = match bbox {
        Some(b) => b,
        None => {
            let catalog: serde_json::Value = client
                .get(format!("{base}/catalog"))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            let wanted: Vec<&str> = layers.split(',').collect();
            let stats: Vec<crate::source::LayerStats> = catalog["layers"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter(|l| l["name"].as_str().is_some_and(|n| wanted.contains(&n)))
                .filter_map(|l| {
                    let b = l["bounds"].as_array()?;
                    let v: Vec<f64> = b.iter().filter_map(serde_json::Value::as_f64).collect();
                    (v.len() == 4).then(|| crate::source::LayerStats {
                        count: 0,
                        bounds: Some(Bounds {
                            minx: v[0],
                            miny: v[1],
                            maxx: v[2],
                            maxy: v[3],
                        }),
                    })
                })
                .collect();
            crate::tiles::tilejson::union_bounds(&stats).ok_or_else(|| {
                anyhow::anyhow!("the server's catalog gives no bounds for {layers}")
            })?
        }
    };
    let tiles = plan(&bounds, zooms);
    let bar = if show_progress {
        let bar = indicatif::ProgressBar::new(tiles.len() as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "warming [{bar:40}] {pos}/{len} tiles {per_sec}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let summary = std::sync::Mutex::new(WarmSummary {
        tiles: tiles.len() as u64,
        ..Default::default()
    });
    futures::stream::iter(tiles)
        .for_each_concurrent(8, |t| {
            let url = format!("{base}/tiles/{layers}/{}/{}/{}.mvt", t.z, t.x, t.y);
            let (client, bar, summary) = (&client, &bar, &summary);
            async move {
                let result = client
                    .get(url)
                    .header("accept-encoding", "gzip")
                    .send()
                    .await;
                let mut s = match summary.lock() {
                    Ok(s) => s,
                    Err(p) => p.into_inner(),
                };
                match result {
                    Ok(r) if r.status() == 204 => s.empty += 1,
                    Ok(r) if r.status().is_success() => {
                        s.with_data += 1;
                        s.bytes += r.content_length().unwrap_or(0);
                    }
                    _ => s.failed += 1,
                }
                bar.inc(1);
            }
        })
        .await;
    bar.finish_and_clear();
    Ok(summary.into_inner().unwrap_or_default())
}
