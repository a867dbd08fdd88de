//! The memory source: GeoJSON layers held in RAM, indexed by an R-tree each.
//!
//! It is what `cargo run` serves with no database (the embedded sample) and what `--data DIR`
//! serves. Features are read once at start through `data.rs` (the same reader `import` uses),
//! projected to Web Mercator once, and indexed by their Mercator boxes. A tile query walks the
//! R-tree for the buffered tile and hands each hit to `tiles::mvt`, which mirrors PostGIS.

use super::{
    ItemsQuery, LayerStats, NetworkRow, SEARCH_FIELDS, SearchHit, SearchPage, Source, feature_json,
};
use crate::config::{GeometryKind, LayerConfig};
use crate::data::{LayerFeature, layer_files, parse_layer, read_layer_file};
use crate::error::{AppError, AppResult};
use crate::tiles::grid::{Bounds, TileCoord, lonlat_to_mercator};
use crate::tiles::mvt::{LayerEncoder, generalise};
use async_trait::async_trait;
use geo::CoordsIter;
use geo::{BooleanOps, BoundingRect, Geometry, Intersects, MapCoords, Rect, Validation};
use rstar::{AABB, RTree, RTreeObject};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;

/// The sample network compiled into the binary.
const SAMPLE: [(&str, &str); 3] = [
    ("nodes", include_str!("../../data/sample/nodes.geojson")),
    ("arcs", include_str!("../../data/sample/arcs.geojson")),
    (
        "demand_units",
        include_str!("../../data/sample/demand_units.geojson"),
    ),
];

struct Item {
    id: i64,
    lonlat: Geometry<f64>,
    merc: Geometry<f64>,
    props: Vec<Value>,
    /// Per zoom, the generalised geometry, kept for features with many vertices: at low zoom
    /// one polygon appears in many tiles and would be simplified again for each.
    generalised: Option<PerZoom>,
}

/// One slot per zoom (0 to 30), filled on first use.
type PerZoom = Box<[OnceLock<Option<Geometry<f64>>>]>;

/// Features with at least this many vertices keep their generalised geometry per zoom.
const KEEP_GENERALISED_FROM: usize = 64;

struct Entry {
    index: usize,
    /// The item's id, so a tile orders its hits without reading the items.
    id: i64,
    envelope: AABB<[f64; 2]>,
}

impl RTreeObject for Entry {
    type Envelope = AABB<[f64; 2]>;
    fn envelope(&self) -> Self::Envelope {
        self.envelope
    }
}

struct MemoryLayer {
    items: Vec<Item>,
    tree: RTree<Entry>,
    stats: LayerStats,
    search: SearchIndex,
}

/// A bigram index over the lower-cased search fields: a query looks up the rarest bigram of
/// its text and checks only those items, so two-letter queries are indexed too.
#[derive(Default)]
struct SearchIndex {
    /// Per item, its lower-cased search fields.
    texts: Vec<Vec<String>>,
    postings: HashMap<(char, char), Vec<u32>>,
}

fn bigrams(s: &str) -> impl Iterator<Item = (char, char)> + '_ {
    s.chars().zip(s.chars().skip(1))
}

impl SearchIndex {
    fn build(layer: &LayerConfig, items: &[Item]) -> SearchIndex {
        let fields: Vec<usize> = SEARCH_FIELDS
            .iter()
            .filter_map(|f| layer.properties.iter().position(|p| p.name == *f))
            .collect();
        let mut index = SearchIndex::default();
        if fields.is_empty() {
            return index;
        }
        for (i, item) in items.iter().enumerate() {
            let texts: Vec<String> = fields
                .iter()
                .filter_map(|&f| item.props[f].as_str())
                .map(str::to_lowercase)
                .collect();
            let mut grams: Vec<(char, char)> = texts.iter().flat_map(|t| bigrams(t)).collect();
            grams.sort_unstable();
            grams.dedup();
            for g in grams {
                index.postings.entry(g).or_default().push(i as u32);
            }
            index.texts.push(texts);
        }
        index
    }

    /// Item indices whose fields contain `q` (lower-cased), in index order.
    fn find(&self, q: &str) -> Vec<u32> {
        let q = q.to_lowercase();
        let rarest = bigrams(&q)
            .map(|g| self.postings.get(&g).map_or(&[][..], Vec::as_slice))
            .min_by_key(|list| list.len());
        let candidates: Vec<u32> = match rarest {
            Some(list) => list.to_vec(),
            None => (0..self.texts.len() as u32).collect(),
        };
        candidates
            .into_iter()
            .filter(|&i| self.texts[i as usize].iter().any(|t| t.contains(&q)))
            .collect()
    }
}

/// Layers held in memory, by name.
pub struct MemorySource {
    layers: HashMap<String, MemoryLayer>,
}

impl MemorySource {
    /// Loads the embedded sample network.
    pub fn sample(layers: &[LayerConfig]) -> anyhow::Result<MemorySource> {
        let mut out = HashMap::new();
        for layer in layers {
            if let Some((_, text)) = SAMPLE.iter().find(|(name, _)| *name == layer.file()) {
                let features = parse_layer(text, layer)
                    .map_err(|e| anyhow::anyhow!("embedded sample {}: {e}", layer.name))?;
                out.insert(layer.name.clone(), build_layer(layer, features));
            }
        }
        Ok(MemorySource { layers: out })
    }

    /// Holds features already read (benchmarks and tests build data this way).
    pub fn from_features(layers: Vec<(&LayerConfig, Vec<LayerFeature>)>) -> MemorySource {
        let layers = layers
            .into_iter()
            .map(|(layer, features)| (layer.name.clone(), build_layer(layer, features)))
            .collect();
        MemorySource { layers }
    }

    /// Loads every configured layer that has a `NAME.geojson` in `dir`.
    pub fn from_dir(dir: &Path, layers: &[LayerConfig]) -> anyhow::Result<MemorySource> {
        let files = layer_files(dir, layers);
        anyhow::ensure!(
            !files.is_empty(),
            "{} holds no layer file (expected one of: {})",
            dir.display(),
            layers
                .iter()
                .map(|l| format!("{}.geojson", l.file()))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut out = HashMap::new();
        for (layer, path) in files {
            let features = read_layer_file(&path, layer)?;
            out.insert(layer.name.clone(), build_layer(layer, features));
        }
        Ok(MemorySource { layers: out })
    }

    fn layer(&self, name: &str) -> AppResult<&MemoryLayer> {
        self.layers
            .get(name)
            .ok_or_else(|| AppError::not_found(format!("layer {name:?} has no data")))
    }

    /// Ids of the features matching a query, in id order (before paging).
    fn matching(&self, layer: &LayerConfig, query: &ItemsQuery) -> AppResult<Vec<usize>> {
        let data = self.layer(&layer.name)?;
        let filters = query
            .filters
            .iter()
            .map(|(name, value)| {
                let i = layer
                    .properties
                    .iter()
                    .position(|p| &p.name == name)
                    .ok_or_else(|| AppError::bad(format!("unknown property {name:?}")))?;
                Ok((i, value.as_str()))
            })
            .collect::<AppResult<Vec<_>>>()?;
        let mut hits: Vec<usize> = match &query.bbox {
            Some(b) => {
                let rect = Rect::new((b.minx, b.miny), (b.maxx, b.maxy));
                let poly = rect.to_polygon();
                data.tree
                    .locate_in_envelope_intersecting(&merc_envelope(b))
                    .map(|e| e.index)
                    .filter(|&i| data.items[i].lonlat.intersects(&poly))
                    .collect()
            }
            None => (0..data.items.len()).collect(),
        };
        hits.retain(|&i| {
            filters
                .iter()
                .all(|(p, v)| value_text(&data.items[i].props[*p]).as_deref() == Some(*v))
        });
        hits.sort_by_key(|&i| data.items[i].id);
        Ok(hits)
    }
}

fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn merc_envelope(b: &Bounds) -> AABB<[f64; 2]> {
    let (x0, y0) = lonlat_to_mercator(b.minx, b.miny);
    let (x1, y1) = lonlat_to_mercator(b.maxx, b.maxy);
    AABB::from_corners([x0, y0], [x1, y1])
}

/// Indexes a layer; features without an id get the next free one, invalid polygons are
/// repaired (as the schema's `geom_valid` column does for PostGIS).
fn build_layer(layer: &LayerConfig, features: Vec<LayerFeature>) -> MemoryLayer {
    let mut next_id = features.iter().filter_map(|f| f.id).max().unwrap_or(0) + 1;
    let mut items = Vec::with_capacity(features.len());
    let mut entries = Vec::with_capacity(features.len());
    let mut extent: Option<Bounds> = None;
    for f in features {
        let id = f.id.unwrap_or_else(|| {
            next_id += 1;
            next_id - 1
        });
        // Tiles start from the stored geometry (repaired after clipping, as PostGIS does);
        // GeoJSON answers get a repaired copy, like the schema's `geom_valid`.
        let merc = f.geometry.map_coords(|c| {
            let (x, y) = lonlat_to_mercator(c.x, c.y);
            geo::Coord { x, y }
        });
        let lonlat = match (layer.geometry, f.geometry) {
            (GeometryKind::Polygon, Geometry::Polygon(p)) if !p.is_valid() => {
                Geometry::MultiPolygon(p.union(&geo::MultiPolygon::new(vec![])))
            }
            (GeometryKind::Polygon, Geometry::MultiPolygon(p)) if !p.is_valid() => {
                Geometry::MultiPolygon(p.union(&geo::MultiPolygon::new(vec![])))
            }
            (_, g) => g,
        };
        let Some(r) = merc.bounding_rect() else {
            continue;
        };
        let (minx, miny) = crate::tiles::grid::mercator_to_lonlat(r.min().x, r.min().y);
        let (maxx, maxy) = crate::tiles::grid::mercator_to_lonlat(r.max().x, r.max().y);
        let b = Bounds {
            minx,
            miny,
            maxx,
            maxy,
        };
        extent = Some(match extent {
            None => b,
            Some(e) => Bounds {
                minx: e.minx.min(b.minx),
                miny: e.miny.min(b.miny),
                maxx: e.maxx.max(b.maxx),
                maxy: e.maxy.max(b.maxy),
            },
        });
        entries.push(Entry {
            index: items.len(),
            id,
            envelope: merc_envelope(&b),
        });
        let generalised = (merc.coords_count() >= KEEP_GENERALISED_FROM)
            .then(|| (0..=30).map(|_| OnceLock::new()).collect());
        items.push(Item {
            id,
            lonlat,
            merc,
            props: f.props,
            generalised,
        });
    }
    let tree = RTree::bulk_load(entries);
    cluster_in_tree_order(&mut items, &tree);
    MemoryLayer {
        stats: LayerStats {
            count: items.len() as u64,
            bounds: extent,
        },
        search: SearchIndex::build(layer, &items),
        items,
        tree,
    }
}

/// Allocates again, in the R-tree's leaf order, what tiles read of each item (its Web
/// Mercator geometry and its properties), so the features of one tile lie close together in
/// memory. With a million features, reading them scattered in load order cost more than
/// encoding them. The items themselves stay in load order.
fn cluster_in_tree_order(items: &mut [Item], tree: &RTree<Entry>) {
    // Every copy is made before any old allocation is freed, or copies would reuse the freed
    // places, in load order again.
    let copies: Vec<(usize, Geometry<f64>, Vec<Value>)> = tree
        .iter()
        .map(|e| {
            let item = &items[e.index];
            (e.index, item.merc.clone(), item.props.clone())
        })
        .collect();
    for (i, merc, props) in copies {
        items[i].merc = merc;
        items[i].props = props;
    }
}

fn properties(layer: &LayerConfig, id: i64, props: &[Value]) -> Map<String, Value> {
    let mut m = Map::with_capacity(props.len() + 1);
    m.insert("id".into(), Value::from(id));
    for (p, v) in layer.properties.iter().zip(props) {
        m.insert(p.name.clone(), v.clone());
    }
    m
}

fn geometry_value(g: &Geometry<f64>) -> Value {
    serde_json::to_value(geojson::Geometry::from(g)).unwrap_or(Value::Null)
}

fn clip_to(g: &Geometry<f64>, b: &Bounds) -> Option<Geometry<f64>> {
    let rect = Rect::new((b.minx, b.miny), (b.maxx, b.maxy));
    let poly = rect.to_polygon();
    let out = match g {
        Geometry::Point(p) => {
            return (p.x() >= b.minx && p.x() <= b.maxx && p.y() >= b.miny && p.y() <= b.maxy)
                .then(|| g.clone());
        }
        Geometry::LineString(l) => {
            Geometry::MultiLineString(poly.clip(&geo::MultiLineString::new(vec![l.clone()]), false))
        }
        Geometry::MultiLineString(l) => Geometry::MultiLineString(poly.clip(l, false)),
        Geometry::Polygon(p) => Geometry::MultiPolygon(p.intersection(&poly)),
        Geometry::MultiPolygon(p) => Geometry::MultiPolygon(p.intersection(&poly)),
        other => other.clone(),
    };
    Some(simplify_collection(out))
}

/// A multi-geometry with one part becomes that part, as PostGIS's clipping returns it.
fn simplify_collection(g: Geometry<f64>) -> Geometry<f64> {
    match g {
        Geometry::MultiLineString(mut m) if m.0.len() == 1 => Geometry::LineString(m.0.remove(0)),
        Geometry::MultiPolygon(mut m) if m.0.len() == 1 => Geometry::Polygon(m.0.remove(0)),
        other => other,
    }
}

fn is_empty(g: &Geometry<f64>) -> bool {
    match g {
        Geometry::MultiLineString(m) => m.0.is_empty(),
        Geometry::MultiPolygon(m) => m.0.is_empty(),
        _ => false,
    }
}

#[async_trait]
impl Source for MemorySource {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn tile(&self, layers: &[&LayerConfig], tile: TileCoord) -> AppResult<Vec<u8>> {
        let b = tile.mercator_bounds().grow(tile.unit_m() * 64.0);
        let transform = tile.to_tile_transform();
        let env = AABB::from_corners([b.minx, b.miny], [b.maxx, b.maxy]);
        let mut out = Vec::new();
        for layer in layers {
            if tile.z < layer.minzoom || tile.z > layer.maxzoom {
                continue;
            }
            let Some(data) = self.layers.get(&layer.name) else {
                continue;
            };
            // In id order, ties in the order of the data.
            let mut hits: Vec<(i64, usize)> = data
                .tree
                .locate_in_envelope_intersecting(&env)
                .map(|e| (e.id, e.index))
                .collect();
            hits.sort_unstable();
            let tol = layer.simplify_units();
            let mut encoder = LayerEncoder::new(layer, &tile, transform, hits.len());
            for item in hits.into_iter().map(|(_, i)| &data.items[i]) {
                match &item.generalised {
                    Some(slots) => {
                        let g = slots[tile.z.min(30) as usize]
                            .get_or_init(|| generalise(&item.merc, tile.z, tol));
                        if let Some(g) = g {
                            encoder.add_generalised(item.id, g, &item.props);
                        }
                    }
                    None => encoder.add_mercator(item.id, &item.merc, &item.props),
                }
            }
            encoder.finish(&mut out);
        }
        Ok(out)
    }

    async fn tile_features(
        &self,
        layers: &[&LayerConfig],
        tile: TileCoord,
    ) -> AppResult<Vec<String>> {
        let b = tile.lonlat_bounds();
        let mut out = Vec::new();
        for layer in layers {
            if tile.z < layer.minzoom || tile.z > layer.maxzoom {
                continue;
            }
            let Some(data) = self.layers.get(&layer.name) else {
                continue;
            };
            let mut hits: Vec<&Item> = data
                .tree
                .locate_in_envelope_intersecting(&merc_envelope(&b))
                .map(|e| &data.items[e.index])
                .collect();
            hits.sort_by_key(|i| i.id);
            for item in hits {
                let Some(g) = clip_to(&item.lonlat, &b).filter(|g| !is_empty(g)) else {
                    continue;
                };
                out.push(feature_json(
                    Some(&layer.name),
                    item.id,
                    &geometry_value(&g),
                    &properties(layer, item.id, &item.props),
                ));
            }
        }
        Ok(out)
    }

    async fn count(&self, layer: &LayerConfig, query: &ItemsQuery) -> AppResult<u64> {
        Ok(self.matching(layer, query)?.len() as u64)
    }

    async fn stream_items(
        &self,
        layer: &LayerConfig,
        query: &ItemsQuery,
        out: tokio::sync::mpsc::Sender<String>,
    ) -> AppResult<u64> {
        let data = self.layer(&layer.name)?;
        let hits = self.matching(layer, query)?;
        let mut sent = 0;
        for &i in hits.iter().skip(query.offset).take(query.limit) {
            let item = &data.items[i];
            let g = match (&query.bbox, query.clip) {
                (Some(b), true) => match clip_to(&item.lonlat, b) {
                    Some(g) => g,
                    None => continue,
                },
                _ => item.lonlat.clone(),
            };
            let f = feature_json(
                None,
                item.id,
                &geometry_value(&g),
                &properties(layer, item.id, &item.props),
            );
            if out.send(f).await.is_err() {
                break;
            }
            sent += 1;
        }
        Ok(sent)
    }

    async fn item(&self, layer: &LayerConfig, id: i64) -> AppResult<Option<String>> {
        let data = self.layer(&layer.name)?;
        Ok(data.items.iter().find(|i| i.id == id).map(|item| {
            feature_json(
                None,
                item.id,
                &geometry_value(&item.lonlat),
                &properties(layer, item.id, &item.props),
            )
        }))
    }

    async fn stats(&self, layer: &LayerConfig) -> AppResult<LayerStats> {
        Ok(self
            .layers
            .get(&layer.name)
            .map(|l| l.stats)
            .unwrap_or_default())
    }

    async fn rows(&self, layer: &LayerConfig) -> AppResult<Vec<NetworkRow>> {
        let data = self.layer(&layer.name)?;
        // In id order, as PostGIS gives them (the items are in the R-tree's order).
        let mut items: Vec<&Item> = data.items.iter().collect();
        items.sort_by_key(|i| i.id);
        Ok(items
            .into_iter()
            .map(|item| NetworkRow {
                id: item.id,
                geometry: geometry_value(&item.lonlat),
                properties: properties(layer, item.id, &item.props),
            })
            .collect())
    }

    async fn search(&self, layer: &LayerConfig, q: &str, limit: usize) -> AppResult<SearchPage> {
        let Some(data) = self.layers.get(&layer.name) else {
            return Ok(SearchPage::default());
        };
        let text = |item: &Item, name: &str| -> Option<String> {
            let i = layer.properties.iter().position(|p| p.name == name)?;
            item.props[i].as_str().map(str::to_string)
        };
        let lower = q.to_lowercase();
        let mut hits: Vec<(u8, String, i64, usize)> = data
            .search
            .find(q)
            .into_iter()
            .map(|i| {
                let item = &data.items[i as usize];
                let code = text(item, "short_code").unwrap_or_default();
                let lc = code.to_lowercase();
                let rank = if lc == lower {
                    0
                } else if lc.starts_with(&lower) {
                    1
                } else {
                    2
                };
                (rank, code, item.id, i as usize)
            })
            .collect();
        hits.sort();
        Ok(SearchPage {
            total: hits.len() as u64,
            hits: hits
                .into_iter()
                .take(limit)
                .map(|(_, code, id, i)| {
                    let item = &data.items[i];
                    SearchHit {
                        id,
                        short_code: layer.property("short_code").map(|_| code),
                        name: text(item, "name"),
                        description: text(item, "description"),
                    }
                })
                .collect(),
        })
    }

    async fn ready(&self) -> AppResult<()> {
        Ok(())
    }
}
