//! The `Source` trait: everything the server answers comes from one of these.
//!
//! A source, given a tile and some layers, yields an encoded tile; given a layer and a box, it
//! yields GeoJSON features. `postgis` answers from the database with one query per request;
//! `memory` answers from R-trees built at start. Everything above this trait (routes, the
//! network graph, the cache) does not know which one it talks to.

pub mod memory;
pub mod postgis;

use crate::config::LayerConfig;
use crate::error::AppResult;
use crate::tiles::grid::{Bounds, TileCoord};
use async_trait::async_trait;
use serde_json::Value;

/// A page request over one layer.
#[derive(Debug, Clone, Default)]
pub struct ItemsQuery {
    /// Only features intersecting this lon/lat box.
    pub bbox: Option<Bounds>,
    /// Page size.
    pub limit: usize,
    /// Features skipped, in id order.
    pub offset: usize,
    /// Clip geometries to `bbox`.
    pub clip: bool,
    /// Property equality filters (published name, value as text).
    pub filters: Vec<(String, String)>,
}

/// Size and extent of a layer.
#[derive(Debug, Clone, Copy, Default)]
pub struct LayerStats {
    /// Feature count.
    pub count: u64,
    /// Lon/lat extent, when the layer has features.
    pub bounds: Option<Bounds>,
}

/// A node or arc row as the network graph and the compatibility routes need it.
#[derive(Debug, Clone)]
pub struct NetworkRow {
    /// Feature id.
    pub id: i64,
    /// Geometry as GeoJSON.
    pub geometry: Value,
    /// Published properties by name.
    pub properties: serde_json::Map<String, Value>,
}

/// Fields `search` looks in, where a layer publishes them.
/// (`description` and `reservoir_name` carry the names people know: "Shasta", "Folsom".)
pub const SEARCH_FIELDS: [&str; 5] = [
    "short_code",
    "name",
    "calsim_id",
    "description",
    "reservoir_name",
];

/// One search match.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    /// Feature id.
    pub id: i64,
    /// `short_code`, when published.
    pub short_code: Option<String>,
    /// `name`, when published.
    pub name: Option<String>,
    /// `description`, when published.
    pub description: Option<String>,
}

/// Matches of one layer, best first.
#[derive(Debug, Clone, Default)]
pub struct SearchPage {
    /// All matches, before the limit.
    pub total: u64,
    /// At most `limit` matches.
    pub hits: Vec<SearchHit>,
}

/// Where features come from.
#[async_trait]
pub trait Source: Send + Sync {
    /// Short name for logs and `/health`: `postgis` or `memory`.
    fn name(&self) -> &'static str;

    /// One MVT holding a layer for each requested layer with features; empty when none has.
    async fn tile(&self, layers: &[&LayerConfig], tile: TileCoord) -> AppResult<Vec<u8>>;

    /// The features of a tile as GeoJSON Features (JSON text), clipped to the tile.
    async fn tile_features(
        &self,
        layers: &[&LayerConfig],
        tile: TileCoord,
    ) -> AppResult<Vec<String>>;

    /// How many features match the query, before paging.
    async fn count(&self, layer: &LayerConfig, query: &ItemsQuery) -> AppResult<u64>;

    /// Sends one page of features (GeoJSON Feature text each), in id order, to `out` as they
    /// are produced, so a large page never sits whole in memory; stops early when `out`
    /// closes (the client went away). Returns how many were sent.
    async fn stream_items(
        &self,
        layer: &LayerConfig,
        query: &ItemsQuery,
        out: tokio::sync::mpsc::Sender<String>,
    ) -> AppResult<u64>;

    /// One feature by id, as a GeoJSON Feature (JSON text).
    async fn item(&self, layer: &LayerConfig, id: i64) -> AppResult<Option<String>>;

    /// Feature count and extent of a layer.
    async fn stats(&self, layer: &LayerConfig) -> AppResult<LayerStats>;

    /// Every row of a layer with its geometry, for the network graph.
    async fn rows(&self, layer: &LayerConfig) -> AppResult<Vec<NetworkRow>>;

    /// Case-insensitive substring search in [`SEARCH_FIELDS`], through an index: exact
    /// `short_code` first, then `short_code` prefixes, then the rest, each by `short_code`.
    async fn search(&self, layer: &LayerConfig, q: &str, limit: usize) -> AppResult<SearchPage>;

    /// Whether the source can answer now.
    async fn ready(&self) -> AppResult<()>;

    /// Releases connections at shutdown.
    async fn close(&self) {}

    /// The connection pool's figures, for sources that have one.
    fn pool_status(&self) -> Option<PoolStatus> {
        None
    }
}

/// A connection pool's figures for `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
pub struct PoolStatus {
    /// Most connections the pool opens.
    pub max: u32,
    /// Connections open now.
    pub size: u32,
    /// Open connections not in use.
    pub idle: u32,
}

/// Builds a GeoJSON Feature's JSON text from its parts; `layer` adds a foreign member.
pub fn feature_json(
    layer: Option<&str>,
    id: i64,
    geometry: &Value,
    props: &serde_json::Map<String, Value>,
) -> String {
    let mut f = serde_json::Map::with_capacity(5);
    f.insert("type".into(), Value::from("Feature"));
    f.insert("id".into(), Value::from(id));
    if let Some(layer) = layer {
        f.insert("layer".into(), Value::from(layer));
    }
    f.insert("geometry".into(), geometry.clone());
    f.insert("properties".into(), Value::Object(props.clone()));
    Value::Object(f).to_string()
}
