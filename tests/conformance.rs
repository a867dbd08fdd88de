//! Conformance: the memory source must give the same tiles as PostGIS's `ST_AsMVT` (the
//! reference), and the PostGIS source with the `rust` encoder the same bytes as the memory
//! source (one encoder, fed from WKB).
//!
//! The real CalSim3 data is imported into a fresh PostGIS and loaded into memory; every tile at
//! z 5 to 10 over the data's bounds, plus a fixed pseudo-random sample at z 11 to 14, is made by
//! both, decoded with `mvt-reader`, and compared: same layers, same feature ids, same
//! properties, geometry within one tile unit (Hausdorff distance). A tiny feature that
//! collapses in one source and survives in the other is counted and listed; at most 1 % of a
//! layer's features over the whole suite may differ that way. A second check compares each
//! PostGIS tile's feature count with a direct SQL count of features meeting the buffered tile.

mod common;

use coeqwal_network_api::config::{Config, GeometryKind, LayerConfig, TileEncoder, quote_ident};
use coeqwal_network_api::tiles::grid::{Bounds, TileCoord};
use geo::{Geometry, HausdorffDistance};
use mvt_reader::feature::{Feature, Value as MvtValue};
use sqlx::Row;
use std::collections::{BTreeMap, HashMap};

/// The CalSim3 network's core, where the tile checks look.
const CENTRAL_VALLEY: Bounds = Bounds {
    minx: -122.80,
    miny: 35.99,
    maxx: -119.71,
    maxy: 40.80,
};

/// Tiles the suite compares: all of z 5-10 over the bounds, and a fixed sample at z 11-14.
fn suite_tiles(bounds: &Bounds) -> Vec<TileCoord> {
    let mut tiles = Vec::new();
    for z in 5..=10 {
        tiles.extend(TileCoord::covering(bounds, z));
    }
    // A fixed linear congruential sequence: the same sample on every run.
    let mut state: u64 = 0x5eed_cafe;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as usize
    };
    for z in 11..=14 {
        let all = TileCoord::covering(bounds, z);
        for _ in 0..60 {
            tiles.push(all[next() % all.len()]);
        }
    }
    tiles
}

fn number(v: &MvtValue) -> Option<f64> {
    match v {
        MvtValue::Float(f) => Some(*f as f64),
        MvtValue::Double(d) => Some(*d),
        MvtValue::Int(i) | MvtValue::SInt(i) => Some(*i as f64),
        MvtValue::UInt(u) => Some(*u as f64),
        _ => None,
    }
}

fn same_value(a: &MvtValue, b: &MvtValue) -> bool {
    match (number(a), number(b)) {
        (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(1.0),
        _ => a == b,
    }
}

/// Geometry distance in tile units; infinite when the kinds differ in dimension.
fn distance(a: &Geometry<f64>, b: &Geometry<f64>) -> f64 {
    a.hausdorff_distance(b)
}

#[derive(Default)]
struct LayerTally {
    instances: usize,
    collapsed: Vec<String>,
    far: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_matches_postgis_tile_by_tile() {
    let dir = common::calsim3_dir();
    let (_url, pool) = common::postgis_with(&dir, "conformance").await;
    let postgis = common::postgis_source_with(pool.clone(), TileEncoder::Postgis);
    let memory = common::memory_source(&dir);
    let config = Config::default();
    let layers: Vec<&LayerConfig> = config.layers.iter().collect();

    let mut stats = Vec::new();
    for l in &layers {
        let s = postgis.stats(l).await.unwrap();
        let m = memory.stats(l).await.unwrap();
        assert_eq!(s.count, m.count, "feature count of {}", l.name);
        stats.push(s);
    }
    let bounds = coeqwal_network_api::tiles::tilejson::union_bounds(&stats).unwrap();
    let tiles = suite_tiles(&bounds);
    assert!(tiles.len() > 300, "{} tiles", tiles.len());

    let mut tally: BTreeMap<String, LayerTally> = BTreeMap::new();
    let mut property_errors = Vec::new();
    let mut compared_features = 0usize;
    for tile in &tiles {
        let a = common::decode(&postgis.tile(&layers, *tile).await.unwrap());
        let b = common::decode(&memory.tile(&layers, *tile).await.unwrap());
        let names: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
        for name in names {
            let t = tally.entry(name.clone()).or_default();
            let by_id = |fs: Option<&Vec<Feature<f64>>>| -> HashMap<u64, Feature<f64>> {
                fs.map(|v| {
                    v.iter()
                        .map(|f| (f.id.expect("every feature has an id"), f.clone()))
                        .collect()
                })
                .unwrap_or_default()
            };
            let fa = by_id(a.get(name));
            let fb = by_id(b.get(name));
            let mut ids: Vec<u64> = fa.keys().chain(fb.keys()).copied().collect();
            ids.sort_unstable();
            ids.dedup();
            for id in ids {
                t.instances += 1;
                let where_ = format!("{}/{}/{} {name} id {id}", tile.z, tile.x, tile.y);
                match (fa.get(&id), fb.get(&id)) {
                    (Some(x), Some(y)) => {
                        compared_features += 1;
                        let px = x.properties.clone().unwrap_or_default();
                        let py = y.properties.clone().unwrap_or_default();
                        let keys: std::collections::BTreeSet<&String> =
                            px.keys().chain(py.keys()).collect();
                        for k in keys {
                            match (px.get(k), py.get(k)) {
                                (Some(u), Some(v)) if same_value(u, v) => {}
                                (u, v) => property_errors
                                    .push(format!("{where_}: {k}: postgis {u:?} memory {v:?}")),
                            }
                        }
                        let d = distance(&x.geometry, &y.geometry);
                        if d > 1.0 + 1e-9 {
                            t.far.push(format!("{where_}: distance {d:.2}"));
                        }
                    }
                    (Some(_), None) => t.collapsed.push(format!("{where_}: only in postgis")),
                    (None, Some(_)) => t.collapsed.push(format!("{where_}: only in memory")),
                    (None, None) => unreachable!(),
                }
            }
        }
    }

    println!(
        "conformance: {} tiles, {compared_features} features compared",
        tiles.len()
    );
    let mut failures = Vec::new();
    for (name, t) in &tally {
        let differing = t.collapsed.len() + t.far.len();
        println!(
            "  {name}: {} feature instances, {} present in one source only, {} farther than 1 unit",
            t.instances,
            t.collapsed.len(),
            t.far.len()
        );
        for line in t.collapsed.iter().chain(&t.far) {
            println!("    {line}");
        }
        if differing as f64 > 0.01 * t.instances as f64 {
            failures.push(format!(
                "{name}: {differing} of {} differ (over 1 %)",
                t.instances
            ));
        }
    }
    assert!(
        property_errors.is_empty(),
        "properties differ:\n{}",
        property_errors.join("\n")
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(compared_features > 5000, "too few features compared");
}

/// Each PostGIS tile holds every feature that meets the buffered tile, counted in SQL: points
/// all of them; lines and polygons all but those that generalisation removes on purpose at that
/// zoom: collapsed by the layer's simplification, or by snapping (under one tile unit across,
/// in whole or where it meets the buffered tile).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgis_tiles_hold_every_feature_of_the_tile() {
    let dir = common::calsim3_dir();
    let (_url, pool) = common::postgis_with(&dir, "counts").await;
    for encoder in [TileEncoder::Postgis, TileEncoder::Rust] {
        let postgis = common::postgis_source_with(pool.clone(), encoder);
        every_feature_of_the_tile(&pool, postgis.as_ref(), encoder).await;
    }
}

async fn every_feature_of_the_tile(
    pool: &sqlx::PgPool,
    postgis: &dyn coeqwal_network_api::source::Source,
    encoder: TileEncoder,
) {
    let config = Config::default();
    let layers: Vec<&LayerConfig> = config.layers.iter().collect();
    let bounds = CENTRAL_VALLEY;
    let (mut checked, mut generalised, mut total) = (0usize, 0usize, 0usize);
    for z in 5..=10u8 {
        for tile in TileCoord::covering(&bounds, z) {
            let decoded = common::decode(&postgis.tile(&layers, tile).await.unwrap());
            for layer in &layers {
                // Each intersecting feature, and whether generalisation removes it at this zoom.
                let sql = format!(
                    "SELECT t.{id}::bigint, \
                       coalesce(ST_IsEmpty(ST_Simplify(m, $4 * {tol})), true) \
                         OR greatest(ST_XMax(m) - ST_XMin(m), ST_YMax(m) - ST_YMin(m)) < $4 \
                         OR (ST_Dimension(m) = 2 AND least(ST_XMax(c) - ST_XMin(c), ST_YMax(c) - ST_YMin(c)) < $4) \
                         OR greatest(ST_XMax(c) - ST_XMin(c), ST_YMax(c) - ST_YMin(c)) < $4 \
                     FROM {table} t, \
                       LATERAL (SELECT ST_Transform(t.{g}, 3857) AS m) p, \
                       LATERAL (SELECT ST_ClipByBox2D(m, ST_TileEnvelope($1, $2, $3, margin => 64.0/4096)) AS c) q \
                     WHERE ST_Intersects(t.{g}, \
                       ST_Transform(ST_TileEnvelope($1, $2, $3, margin => 64.0/4096), 4326))",
                    id = quote_ident(&layer.id_column),
                    table = quote_ident(&layer.table),
                    g = quote_ident(&layer.geometry_column),
                    tol = layer.simplify_units(),
                );
                let rows = sqlx::query(&sql)
                    .bind(tile.z as i32)
                    .bind(tile.x as i32)
                    .bind(tile.y as i32)
                    .bind(tile.unit_m())
                    .fetch_all(pool)
                    .await
                    .unwrap();
                let present: std::collections::HashSet<u64> = decoded
                    .get(&layer.name)
                    .map(|fs| fs.iter().filter_map(|f| f.id).collect())
                    .unwrap_or_default();
                assert!(
                    present.len() <= rows.len(),
                    "{encoder:?}: {} has extra features",
                    layer.name
                );
                for r in rows {
                    total += 1;
                    let id: i64 = r.get(0);
                    if present.contains(&(id as u64)) {
                        continue;
                    }
                    let collapses: bool = r.get(1);
                    assert!(
                        layer.geometry != GeometryKind::Point && collapses,
                        "{encoder:?}: {} id {id} missing from {}/{}/{} though it survives simplification",
                        layer.name,
                        tile.z,
                        tile.x,
                        tile.y
                    );
                    generalised += 1;
                }
                checked += 1;
            }
        }
    }
    println!(
        "{encoder:?}: checked {checked} layer tiles: {total} features, {generalised} removed by generalisation"
    );
    assert!(total > 10_000);
}

/// The PostGIS source with the `rust` encoder makes the memory source's tiles byte for byte:
/// one encoder, fed from the database's WKB instead of the files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_encoded_postgis_tiles_are_the_memory_tiles() {
    let dir = common::calsim3_dir();
    let (_url, pool) = common::postgis_with(&dir, "rust_encoder").await;
    let postgis = common::postgis_source_with(pool, TileEncoder::Rust);
    let memory = common::memory_source(&dir);
    let config = Config::default();
    let layers: Vec<&LayerConfig> = config.layers.iter().collect();
    let bounds = CENTRAL_VALLEY;
    let tiles = suite_tiles(&bounds);
    let mut differing = Vec::new();
    let mut non_empty = 0;
    for tile in &tiles {
        let a = postgis.tile(&layers, *tile).await.unwrap();
        let b = memory.tile(&layers, *tile).await.unwrap();
        non_empty += usize::from(!a.is_empty());
        if a != b {
            differing.push(format!("{}/{}/{}", tile.z, tile.x, tile.y));
        }
    }
    assert!(non_empty > 150, "only {non_empty} tiles hold features");
    assert!(
        differing.is_empty(),
        "{} of {} tiles differ: {:?}",
        differing.len(),
        tiles.len(),
        &differing[..differing.len().min(20)]
    );
}
