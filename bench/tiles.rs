//! Criterion benchmarks of the embedded memory source's tile generation (simplify, clip, snap,
//! encode), with the tile cache out of the way: 100 tiles z 6-12 of the three CalSim3 layers
//! (`CALSIM3_DATA`, default `../shared/data/calsim3`), and 100 tiles z 8-10 of synthetic lines
//! at the density of `bench/gen_lines.sql` (about 7,600 lines a square degree) over 2 by 2
//! degrees. Under `perf record` with `--profile-time N` it shows where a cold tile's time goes.

use coeqwal_network_api::config::{Config, LayerConfig};
use coeqwal_network_api::data::LayerFeature;
use coeqwal_network_api::source::Source;
use coeqwal_network_api::source::memory::MemorySource;
use coeqwal_network_api::tiles::cache::gzip_at;
use coeqwal_network_api::tiles::grid::{TileCoord, lonlat_to_tile};
use criterion::{Criterion, criterion_group, criterion_main};
use geo::{Coord, Geometry, LineString};
use std::path::PathBuf;

/// A small deterministic generator (xorshift), so every run draws the same data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `count` tiles at random zooms of `zooms` over a lon/lat box.
fn tiles(bounds: [f64; 4], zooms: &[u8], count: usize, seed: u64) -> Vec<TileCoord> {
    let mut rng = Rng(seed);
    (0..count)
        .map(|_| {
            let z = zooms[(rng.next() * zooms.len() as f64) as usize];
            let (x0, y0) = lonlat_to_tile(bounds[0], bounds[3], z);
            let (x1, y1) = lonlat_to_tile(bounds[2], bounds[1], z);
            let x = x0 + (rng.next() * f64::from(x1 - x0 + 1)) as u32;
            let y = y0 + (rng.next() * f64::from(y1 - y0 + 1)) as u32;
            TileCoord::new(u32::from(z), u64::from(x), u64::from(y), 22).expect("on the grid")
        })
        .collect()
}

/// Lines of 2 to 6 vertices as `bench/gen_lines.sql` draws them, over `bounds`.
fn synthetic_lines(bounds: [f64; 4], count: usize) -> Vec<LayerFeature> {
    let mut rng = Rng(42);
    (0..count)
        .map(|i| {
            let x0 = bounds[0] + rng.next() * (bounds[2] - bounds[0]);
            let y0 = bounds[1] + rng.next() * (bounds[3] - bounds[1]);
            let (dx, dy) = ((rng.next() - 0.5) * 0.01, (rng.next() - 0.5) * 0.01);
            let n = 2 + (rng.next() * 5.0) as usize;
            let coords = (0..n)
                .map(|k| Coord {
                    x: x0 + k as f64 * dx + (rng.next() - 0.5) * 0.004,
                    y: y0 + k as f64 * dy + (rng.next() - 0.5) * 0.004,
                })
                .collect();
            LayerFeature {
                id: Some(i as i64 + 1),
                geometry: Geometry::LineString(LineString::new(coords)),
                props: vec![serde_json::Value::from((i % 7) as i64)],
            }
        })
        .collect()
}

/// Generates every tile of `list` once, as a cold request would.
fn generate_all(
    rt: &tokio::runtime::Runtime,
    source: &MemorySource,
    layers: &[&LayerConfig],
    list: &[TileCoord],
) -> usize {
    rt.block_on(async {
        let mut bytes = 0;
        for t in list {
            bytes += source.tile(layers, *t).await.expect("a tile").len();
        }
        bytes
    })
}

fn memory_tiles(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let config = Config::default();
    let dir = std::env::var_os("CALSIM3_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared/data/calsim3"));
    let calsim = MemorySource::from_dir(&dir, &config.layers).expect("the CalSim3 data loads");
    let all: Vec<&LayerConfig> = config.layers.iter().collect();
    let calsim_tiles = tiles(
        [-122.8, 35.99, -119.71, 40.8],
        &[6, 7, 8, 9, 10, 11, 12],
        100,
        1,
    );
    c.bench_function("memory: 100 CalSim3 tiles z6-12, three layers", |b| {
        b.iter(|| generate_all(&rt, &calsim, &all, &calsim_tiles))
    });

    // The layer bench/synthetic.toml publishes.
    let lines_layer: LayerConfig = serde_json::from_value(serde_json::json!({
        "name": "synthetic",
        "table": "synthetic_line",
        "geometry": "line",
        "properties": [{"name": "kind", "type": "integer"}],
    }))
    .expect("a layer");
    let area = [-121.0, 37.0, -119.0, 39.0];
    let lines = MemorySource::from_features(vec![(&lines_layer, synthetic_lines(area, 30_300))]);
    // Tiles well inside the area, so each is as full as a tile of the 1,000,000-line table.
    let line_tiles = tiles([-120.6, 37.4, -119.4, 38.6], &[8, 9, 10], 100, 2);
    c.bench_function("memory: 100 synthetic-line tiles z8-10", |b| {
        b.iter(|| generate_all(&rt, &lines, &[&lines_layer], &line_tiles))
    });

    // What a cold request pays to compress such a tile (z 9, about 3,000 lines), by level.
    let z9 = TileCoord::new(9, 85, 197, 22).expect("on the grid");
    let z9 = rt.block_on(async { lines.tile(&[&lines_layer], z9).await.expect("a tile") });
    for level in [1, 2, 3, 6] {
        let size = gzip_at(&z9, level).len();
        let name = format!(
            "gzip level {level}: a z9 line tile, {} -> {size} bytes",
            z9.len()
        );
        c.bench_function(&name, |b| b.iter(|| gzip_at(&z9, level).len()));
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = memory_tiles
}
criterion_main!(benches);
