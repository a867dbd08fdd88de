//! Configuration: what the server publishes and how it listens.
//!
//! Values come from three places, each overriding the one before: a TOML file (`--config`),
//! environment variables, and command-line flags (clap merges the last two). Layers are
//! configuration, not code: each names its table, geometry and id columns, the properties it
//! publishes (with their types, so both sources encode the same values) and its zoom range.
//! `Config::validate` runs once at start so a bad file fails loudly before the server listens.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The whole configuration of one server instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: String,
    /// PostgreSQL URL; when absent the memory source serves.
    pub database_url: Option<String>,
    /// Folder of GeoJSON layer files for the memory source (default: the embedded sample).
    pub data_dir: Option<PathBuf>,
    /// Base URL used in TileJSON and links; when absent it is taken from the request's host.
    pub public_url: Option<String>,
    /// Largest `limit` a feature page may ask for.
    pub items_max_limit: usize,
    /// Default `limit` of a feature page.
    pub items_default_limit: usize,
    /// Largest bbox area, in square degrees, accepted by bbox queries.
    pub max_bbox_area: f64,
    /// Largest zoom level a tile request may ask for.
    pub max_zoom: u8,
    /// Most layers one tile request may combine.
    pub max_layers_per_request: usize,
    /// Connections in the PostgreSQL pool.
    pub db_pool_size: u32,
    /// Tile cache bound in MiB; 0 disables the cache.
    pub cache_size_mb: u64,
    /// `Cache-Control` of tiles, TileJSON and GeoJSON.
    pub cache_control: String,
    /// Seconds requests in flight may take to finish after SIGTERM.
    pub shutdown_grace_secs: u64,
    /// Redis URL of the shared second cache level; none when absent.
    pub redis_url: Option<String>,
    /// Zooms `/api/workshop/status` warms over the data's extent, as `A-B`.
    pub warm_zooms: String,
    /// Folder served at `/web/...`; its `index.html` is the viewer at `/`.
    pub web_dir: PathBuf,
    /// Folder of MapLibre styles served at `/styles/{name}.json`.
    pub styles_dir: PathBuf,
    /// Glyph URL template put into served styles; default: the style's own (served from `web/`).
    pub glyphs_url: Option<String>,
    /// A database query or tile generation slower than this many milliseconds logs a warning.
    pub slow_query_ms: u64,
    /// Who encodes PostGIS tiles: this server from the features' binary geometry (`rust`), or
    /// the database's `ST_AsMVT` (`postgis`).
    pub tile_encoder: TileEncoder,
    /// A request not answered within this many seconds is cancelled and answered 503; it is
    /// also every database statement's `statement_timeout`.
    pub request_timeout_secs: u64,
    /// Milliseconds a request waits for a database connection before it is answered 503.
    pub db_acquire_timeout_ms: u64,
    /// A client that sends no complete request head within this many seconds (a slow client,
    /// or a keep-alive connection left idle) is disconnected.
    pub client_timeout_secs: u64,
    /// Origins allowed by CORS; `*` allows any (tiles need that for maps on other sites).
    pub cors_allow_origins: Vec<String>,
    /// Published layers, in the order they appear in tiles.
    pub layers: Vec<LayerConfig>,
}

/// Who encodes a PostGIS tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TileEncoder {
    /// The database sends each feature's geometry as WKB (one indexed scan, no per-feature
    /// geometry work there) and this server simplifies, clips and encodes it, exactly as the
    /// memory source does: several times less database time per tile.
    Rust,
    /// The database's `ST_AsMVTGeom`/`ST_AsMVT`: the reference the memory source's encoder is
    /// tested against.
    Postgis,
}

/// Geometry kind of a layer; decides clipping and simplification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GeometryKind {
    /// Points (never simplified).
    Point,
    /// Lines.
    Line,
    /// Polygons.
    Polygon,
}

impl GeometryKind {
    /// Name used in the catalog and OGC metadata.
    pub fn name(self) -> &'static str {
        match self {
            GeometryKind::Point => "Point",
            GeometryKind::Line => "LineString",
            GeometryKind::Polygon => "MultiPolygon",
        }
    }
}

/// Type of a published property; both sources coerce values to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PropertyType {
    /// Text.
    String,
    /// 64-bit float.
    Number,
    /// 64-bit integer.
    Integer,
    /// true/false.
    Boolean,
}

impl PropertyType {
    /// Field type name as TileJSON `vector_layers` writes it.
    pub fn tilejson_name(self) -> &'static str {
        match self {
            PropertyType::String => "String",
            PropertyType::Number | PropertyType::Integer => "Number",
            PropertyType::Boolean => "Boolean",
        }
    }

    /// SQL type the column is cast to, so PostGIS encodes the same value type as memory.
    pub fn sql_type(self) -> &'static str {
        match self {
            PropertyType::String => "text",
            PropertyType::Number => "double precision",
            PropertyType::Integer => "bigint",
            PropertyType::Boolean => "boolean",
        }
    }
}

/// One published property of a layer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PropertyConfig {
    /// Name in tiles and GeoJSON.
    pub name: String,
    /// Table column (default: `name`).
    #[serde(default)]
    pub column: Option<String>,
    /// Key in imported GeoJSON files (default: `name`).
    #[serde(default)]
    pub field: Option<String>,
    /// Value type.
    #[serde(rename = "type")]
    pub kind: PropertyType,
}

impl PropertyConfig {
    fn new(name: &str, kind: PropertyType) -> Self {
        PropertyConfig {
            name: name.into(),
            column: None,
            field: None,
            kind,
        }
    }

    fn from_field(name: &str, field: &str, kind: PropertyType) -> Self {
        PropertyConfig {
            field: Some(field.into()),
            ..PropertyConfig::new(name, kind)
        }
    }

    /// The table column holding this property.
    pub fn column(&self) -> &str {
        self.column.as_deref().unwrap_or(&self.name)
    }

    /// The GeoJSON key this property is read from.
    pub fn field(&self) -> &str {
        self.field.as_deref().unwrap_or(&self.name)
    }
}

/// One published layer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerConfig {
    /// Layer name in URLs and tiles.
    pub name: String,
    /// Human title.
    #[serde(default)]
    pub title: Option<String>,
    /// Table (optionally schema-qualified as `schema.table`).
    pub table: String,
    /// Geometry column in SRID 4326.
    #[serde(default = "default_geom")]
    pub geometry_column: String,
    /// Column GeoJSON answers read (default: `geometry_column`); tiles and `import` use
    /// `geometry_column`. The default demand-unit layer names its repaired copy here.
    #[serde(default)]
    pub feature_geometry_column: Option<String>,
    /// Integer id column, used as the MVT feature id and kept as the `id` property.
    #[serde(default = "default_id")]
    pub id_column: String,
    /// Unique text key (e.g. `short_code`); import updates rows that share it.
    #[serde(default)]
    pub key_column: Option<String>,
    /// Geometry kind.
    pub geometry: GeometryKind,
    /// Published properties, besides `id`.
    pub properties: Vec<PropertyConfig>,
    /// Lowest zoom with features.
    #[serde(default)]
    pub minzoom: u8,
    /// Highest zoom with features.
    #[serde(default = "default_maxzoom")]
    pub maxzoom: u8,
    /// Douglas-Peucker tolerance in tile units (extent 4096); 0 disables. Default 8 units,
    /// half a pixel of a 256-pixel tile.
    #[serde(default = "default_simplify")]
    pub simplify: f64,
    /// File name (without `.geojson`) the memory source and `import` read this layer from.
    #[serde(default)]
    pub file: Option<String>,
    /// Lowest zoom whose tiles are cached.
    #[serde(default)]
    pub cache_minzoom: u8,
    /// Highest zoom whose tiles are cached.
    #[serde(default = "default_maxzoom")]
    pub cache_maxzoom: u8,
}

fn default_geom() -> String {
    "geom".into()
}
fn default_id() -> String {
    "id".into()
}
fn default_maxzoom() -> u8 {
    22
}
fn default_simplify() -> f64 {
    8.0
}

impl LayerConfig {
    /// The file stem this layer is loaded from.
    pub fn file(&self) -> &str {
        self.file.as_deref().unwrap_or(&self.name)
    }

    /// The column GeoJSON answers read.
    pub fn feature_geometry_column(&self) -> &str {
        self.feature_geometry_column
            .as_deref()
            .unwrap_or(&self.geometry_column)
    }

    /// The tolerance actually applied: points are never simplified.
    pub fn simplify_units(&self) -> f64 {
        match self.geometry {
            GeometryKind::Point => 0.0,
            _ => self.simplify.max(0.0),
        }
    }

    /// Published field names and TileJSON types, `id` first.
    pub fn fields(&self) -> Vec<(&str, &'static str)> {
        std::iter::once(("id", "Number"))
            .chain(
                self.properties
                    .iter()
                    .map(|p| (p.name.as_str(), p.kind.tilejson_name())),
            )
            .collect()
    }

    /// Whether tiles of this layer at zoom `z` are cached.
    pub fn caches(&self, z: u8) -> bool {
        (self.cache_minzoom..=self.cache_maxzoom).contains(&z)
    }

    /// Looks a published property up by name.
    pub fn property(&self, name: &str) -> Option<&PropertyConfig> {
        self.properties.iter().find(|p| p.name == name)
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "0.0.0.0:8000".into(),
            database_url: None,
            data_dir: None,
            public_url: None,
            items_max_limit: 10_000,
            items_default_limit: 100,
            max_bbox_area: 3600.0,
            max_zoom: 22,
            max_layers_per_request: 16,
            db_pool_size: 10,
            cache_size_mb: 256,
            cache_control: "public, max-age=300".into(),
            warm_zooms: "0-12".into(),
            web_dir: PathBuf::from("web"),
            styles_dir: PathBuf::from("styles"),
            glyphs_url: None,
            slow_query_ms: 500,
            tile_encoder: TileEncoder::Rust,
            request_timeout_secs: 10,
            db_acquire_timeout_ms: 1500,
            client_timeout_secs: 65,
            cors_allow_origins: vec!["*".into()],
            redis_url: None,
            shutdown_grace_secs: 20,
            layers: default_layers(),
        }
    }
}

/// The three CalSim layers: nodes, arcs and demand units.
pub fn default_layers() -> Vec<LayerConfig> {
    use PropertyType::*;
    let p = PropertyConfig::new;
    vec![
        LayerConfig {
            name: "nodes".into(),
            title: Some("CalSim3 network nodes".into()),
            table: "network_node".into(),
            geometry_column: default_geom(),
            feature_geometry_column: None,
            id_column: default_id(),
            key_column: Some("short_code".into()),
            geometry: GeometryKind::Point,
            properties: vec![
                p("short_code", String),
                p("calsim_id", String),
                p("name", String),
                p("description", String),
                PropertyConfig::from_field("node_type", "type", String),
                p("sub_type", String),
                p("river", String),
                p("river_mile", Number),
                p("stream_code", String),
                p("hydrologic_region", String),
                p("reservoir_name", String),
                p("capacity_taf", Number),
                p("dead_pool_taf", Number),
                p("surface_area_acres", Number),
                p("operational_purpose", String),
            ],
            minzoom: 0,
            maxzoom: 22,
            simplify: 0.0,
            file: None,
            cache_minzoom: 0,
            cache_maxzoom: 22,
        },
        LayerConfig {
            name: "arcs".into(),
            title: Some("CalSim3 network arcs (direction of flow)".into()),
            table: "network_arc".into(),
            geometry_column: default_geom(),
            feature_geometry_column: None,
            id_column: default_id(),
            key_column: Some("short_code".into()),
            geometry: GeometryKind::Line,
            properties: vec![
                p("short_code", String),
                p("name", String),
                PropertyConfig::from_field("arc_type", "type", String),
                p("sub_type", String),
                p("from_node", String),
                p("to_node", String),
                p("river", String),
                p("hydrologic_region", String),
                PropertyConfig::from_field("length_m", "shape_length_m", Number),
            ],
            minzoom: 0,
            maxzoom: 22,
            simplify: default_simplify(),
            file: None,
            cache_minzoom: 0,
            cache_maxzoom: 22,
        },
        LayerConfig {
            name: "demand_units".into(),
            title: Some("CalSim3 demand units".into()),
            table: "demand_unit".into(),
            // Tiles simplify the stored polygons and repair them after clipping (both sources
            // alike); GeoJSON serves the schema's repaired copy (6 source polygons self-intersect).
            geometry_column: default_geom(),
            feature_geometry_column: Some("geom_valid".into()),
            id_column: default_id(),
            // du_id repeats (one demand unit, several service areas): the id is the key.
            key_column: None,
            geometry: GeometryKind::Polygon,
            properties: vec![
                p("du_id", String),
                p("kind", String),
                p("name", String),
                p("acres", Number),
            ],
            minzoom: 0,
            maxzoom: 22,
            simplify: default_simplify(),
            file: None,
            cache_minzoom: 0,
            cache_maxzoom: 22,
        },
    ]
}

impl Config {
    /// Reads a TOML file over the defaults.
    pub fn from_file(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read config {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("bad config {}: {e}", path.display()))
    }

    /// Checks what the server relies on, so mistakes fail at start, not on a request.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.layers.is_empty(), "no layers configured");
        anyhow::ensure!(
            self.max_zoom <= crate::tiles::grid::MAX_GRID_ZOOM,
            "max_zoom must be at most {}",
            crate::tiles::grid::MAX_GRID_ZOOM
        );
        anyhow::ensure!(
            self.items_default_limit >= 1 && self.items_default_limit <= self.items_max_limit,
            "items_default_limit must be between 1 and items_max_limit"
        );
        anyhow::ensure!(self.db_pool_size >= 1, "db_pool_size must be at least 1");
        anyhow::ensure!(
            self.request_timeout_secs >= 1,
            "request_timeout_secs must be at least 1"
        );
        anyhow::ensure!(
            self.client_timeout_secs >= 1,
            "client_timeout_secs must be at least 1"
        );
        for origin in &self.cors_allow_origins {
            anyhow::ensure!(
                origin == "*" || axum::http::HeaderValue::from_str(origin).is_ok(),
                "cors_allow_origins: {origin:?} is not a valid origin"
            );
        }
        crate::tiles::warm::parse_zooms(&self.warm_zooms, self.max_zoom)
            .map_err(|e| anyhow::anyhow!("warm_zooms: {e}"))?;
        let mut seen = std::collections::HashSet::new();
        for layer in &self.layers {
            anyhow::ensure!(
                is_identifier(&layer.name),
                "layer name {:?} must be letters, digits and _",
                layer.name
            );
            anyhow::ensure!(
                seen.insert(&layer.name),
                "layer {:?} is configured twice",
                layer.name
            );
            anyhow::ensure!(
                layer.minzoom <= layer.maxzoom,
                "layer {}: minzoom > maxzoom",
                layer.name
            );
            for p in &layer.properties {
                anyhow::ensure!(
                    p.name != "id",
                    "layer {}: `id` is always published",
                    layer.name
                );
            }
        }
        Ok(())
    }

    /// Looks a layer up by name.
    pub fn layer(&self, name: &str) -> Option<&LayerConfig> {
        self.layers.iter().find(|l| l.name == name)
    }
}

/// Whether a name is safe to use as a layer name (it reaches SQL only as a bound string).
pub fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Quotes a configured SQL identifier (optionally `schema.table`) for PostgreSQL.
pub fn quote_ident(name: &str) -> String {
    name.split('.')
        .map(|part| format!("\"{}\"", part.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn quoting_doubles_quotes() {
        assert_eq!(quote_ident("a.b"), "\"a\".\"b\"");
        assert_eq!(quote_ident("x\"y"), "\"x\"\"y\"");
    }

    #[test]
    fn toml_overrides_defaults() {
        let c: Config = toml::from_str("listen = \"127.0.0.1:9\"\nitems_max_limit = 50").unwrap();
        assert_eq!(c.listen, "127.0.0.1:9");
        assert_eq!(c.items_max_limit, 50);
        assert_eq!(c.layers.len(), 3);
    }
}
