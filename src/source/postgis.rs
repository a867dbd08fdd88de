//! The PostGIS source: tiles and GeoJSON made by the database through a connection pool.
//!
//! All SQL for a layer is built here, once, from its configuration (identifiers quoted, never
//! taken from a request); requests only bind values. A tile is one round trip, one statement
//! for every requested layer, each filtered by the GiST index on the buffered tile envelope:
//! with the `rust` encoder (the default) it returns each feature's id, properties and WKB
//! geometry, which `tiles::mvt` turns into the tile as the memory source does; with the
//! `postgis` encoder it concatenates an `ST_AsMVT` per layer. sqlx prepares each distinct
//! statement once per connection.

use super::{ItemsQuery, LayerStats, NetworkRow, SEARCH_FIELDS, SearchHit, SearchPage, Source};
use crate::config::{GeometryKind, LayerConfig, TileEncoder, quote_ident};
use crate::error::{AppError, AppResult};
use crate::tiles::grid::{BUFFER, EXTENT, TileCoord, lonlat_to_mercator};
use crate::tiles::mvt::LayerEncoder;
use async_trait::async_trait;
use serde_json::Value;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use sqlx::{Postgres, Row};
use std::time::{Duration, Instant};

/// Tiles and features from PostgreSQL/PostGIS.
pub struct PostgisSource {
    pool: PgPool,
    /// Queries at least this slow (milliseconds) log a warning.
    slow_ms: u64,
    /// Requests allowed to use or wait for the pool at once; the rest get 503 at once, so a
    /// slow or stopped database never gathers an unbounded queue.
    admission: std::sync::Arc<tokio::sync::Semaphore>,
    /// Who encodes tiles.
    encoder: TileEncoder,
}

/// One feature fetched for the Rust encoder: id, Web Mercator geometry, property values.
type TileFeature = (i64, geo::Geometry<f64>, Vec<Value>);

/// Requests admitted per pooled connection (running or waiting): with the default pool of 10,
/// a workshop's 100 clients (and the streams of their GeoJSON pages) fit with room to spare,
/// while a stopped database still holds at most 320 requests, each for the acquire timeout.
pub const ADMITTED_PER_CONNECTION: usize = 32;

/// Opens a pool of `size` connections; fails fast when the database cannot be reached.
pub async fn connect(url: &str, size: u32) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(size)
        .min_connections(1.min(size))
        .acquire_timeout(Duration::from_secs(3))
        .connect(url)
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to the database: {}", redact(&e.to_string())))
}

/// Opens the serving pool: `db_pool_size` connections, requests wait at most
/// `db_acquire_timeout_ms` for one (then 503), and every statement stops at the request timeout.
pub async fn connect_for_serving(
    url: &str,
    config: &crate::config::Config,
) -> anyhow::Result<PgPool> {
    use std::str::FromStr;
    let options = sqlx::postgres::PgConnectOptions::from_str(url)
        .map_err(|e| anyhow::anyhow!("bad DATABASE_URL: {}", redact(&e.to_string())))?
        .options([
            (
                "statement_timeout",
                format!("{}s", config.request_timeout_secs),
            ),
            // A backend whose client went away (see `Held`) stops its statement within a
            // second instead of running on to the statement timeout (PostgreSQL 14 or later).
            ("client_connection_check_interval", "1000".to_string()),
        ]);
    PgPoolOptions::new()
        .max_connections(config.db_pool_size)
        .min_connections(1.min(config.db_pool_size))
        .acquire_timeout(Duration::from_millis(config.db_acquire_timeout_ms))
        .connect_with(options)
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to the database: {}", redact(&e.to_string())))
}

/// Removes passwords from text that may quote connection URLs (`scheme://user:secret@host`).
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("://") {
        let (head, tail) = rest.split_at(start + 3);
        out.push_str(head);
        let end = tail.find(['/', ' ', '\n']).unwrap_or(tail.len());
        let authority = &tail[..end];
        match (authority.rfind('@'), authority.find(':')) {
            (Some(at), Some(colon)) if colon < at => {
                out.push_str(&authority[..colon + 1]);
                out.push_str("***");
                out.push_str(&authority[at..]);
            }
            _ => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

impl PostgisSource {
    /// Wraps an open pool.
    pub fn new(pool: PgPool) -> PostgisSource {
        let admitted = pool.options().get_max_connections() as usize * ADMITTED_PER_CONNECTION;
        PostgisSource {
            pool,
            slow_ms: 500,
            admission: std::sync::Arc::new(tokio::sync::Semaphore::new(admitted)),
            encoder: TileEncoder::Rust,
        }
    }

    /// Chooses who encodes tiles.
    pub fn with_encoder(mut self, encoder: TileEncoder) -> PostgisSource {
        self.encoder = encoder;
        self
    }

    /// Sets the threshold above which a query logs a warning.
    pub fn with_slow_query_ms(mut self, ms: u64) -> PostgisSource {
        self.slow_ms = ms;
        self
    }

    /// A place in the bounded queue for the pool, or 503 when it is full.
    fn admit(&self) -> AppResult<tokio::sync::OwnedSemaphorePermit> {
        self.admission.clone().try_acquire_owned().map_err(|_| {
            metrics::counter!("db_requests_refused_total").increment(1);
            AppError::Unavailable("the database is busy; retry shortly".into())
        })
    }

    /// Records a finished query's duration (and warns when it was slow).
    fn done(&self, kind: &'static str, started: Instant, what: impl FnOnce() -> String) {
        crate::telemetry::record_query(kind, started, self.slow_ms, what);
    }

    /// The pool, for migrations and tests.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// A tile from the features' WKB, encoded here (the `rust` encoder).
    async fn tile_from_features(
        &self,
        layers: &[&LayerConfig],
        tile: TileCoord,
    ) -> AppResult<Vec<u8>> {
        use geozero::ToGeo;
        let _admitted = self.admit()?;
        let active: Vec<&LayerConfig> = layers
            .iter()
            .copied()
            .filter(|l| tile.z >= l.minzoom && tile.z <= l.maxzoom)
            .collect();
        if active.is_empty() {
            return Ok(Vec::new());
        }
        let sql = active
            .iter()
            .enumerate()
            .map(|(i, l)| features_sql(i, l))
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let rows = self.tile_rows("tile", &sql, layers, tile, false).await?;
        // Features by layer, in Web Mercator, with their properties.
        let mut by_layer: Vec<Vec<TileFeature>> = active.iter().map(|_| Vec::new()).collect();
        for row in rows {
            let Some(wkb) = row.try_get::<Option<&[u8]>, _>("g")? else {
                continue;
            };
            let lonlat = geozero::wkb::Wkb(wkb)
                .to_geo()
                .map_err(|e| AppError::Internal(format!("a geometry is not valid WKB: {e}")))?;
            let merc = geo::MapCoords::map_coords(&lonlat, |c| {
                let (x, y) = lonlat_to_mercator(c.x, c.y);
                geo::Coord { x, y }
            });
            let props: Vec<Value> = serde_json::from_str(row.try_get::<&str, _>("p")?)
                .map_err(|e| AppError::Internal(format!("properties are not JSON: {e}")))?;
            let number = usize::try_from(row.try_get::<i32, _>("l")?).unwrap_or(usize::MAX);
            if let Some(list) = by_layer.get_mut(number) {
                list.push((row.try_get::<i64, _>("id")?, merc, props));
            }
        }
        let transform = tile.to_tile_transform();
        let mut out = Vec::new();
        for (layer, mut features) in active.iter().zip(by_layer) {
            features.sort_by_key(|f| f.0);
            let mut encoder = LayerEncoder::new(layer, &tile, transform, features.len());
            for (id, merc, props) in &features {
                encoder.add_mercator(*id, merc, props);
            }
            encoder.finish(&mut out);
        }
        Ok(out)
    }

    /// A tile made by the database's `ST_AsMVT` (the `postgis` encoder).
    async fn tile_by_st_asmvt(
        &self,
        layers: &[&LayerConfig],
        tile: TileCoord,
    ) -> AppResult<Vec<u8>> {
        let _admitted = self.admit()?;
        let parts: Vec<String> = layers
            .iter()
            .filter(|l| tile.z >= l.minzoom && tile.z <= l.maxzoom)
            .map(|l| mvt_sql(l))
            .collect();
        if parts.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!("SELECT {} AS mvt", parts.join(" || "));
        let rows = self.tile_rows("tile", &sql, layers, tile, true).await?;
        match rows.first() {
            Some(row) => Ok(row.try_get::<Vec<u8>, _>(0)?),
            None => Ok(Vec::new()),
        }
    }

    /// Runs one statement of a tile on a pooled connection, timed as a `kind` query: `$1..$3`
    /// are z/x/y, and `$4` the metres per tile unit when `with_unit`.
    async fn tile_rows(
        &self,
        kind: &'static str,
        sql: &str,
        layers: &[&LayerConfig],
        tile: TileCoord,
        with_unit: bool,
    ) -> AppResult<Vec<sqlx::postgres::PgRow>> {
        let mut held = Held::acquire(&self.pool).await?;
        let started = Instant::now();
        let mut query = sqlx::query(sql)
            .bind(tile.z as i32)
            .bind(tile.x as i32)
            .bind(tile.y as i32);
        if with_unit {
            query = query.bind(tile.unit_m());
        }
        let rows = query.fetch_all(held.conn()).await;
        held.release();
        let rows = rows?;
        self.done(kind, started, || tile_name(layers, tile));
        Ok(rows)
    }
}

/// A pooled connection for one request's query. Dropped before [`Held::release`] (the request
/// was cancelled: its client disconnected, or it ran past the request timeout), it is closed
/// rather than returned to the pool, so PostgreSQL notices the closed socket
/// (`client_connection_check_interval`) and stops the statement at once instead of letting it
/// run on to `statement_timeout` while holding a connection.
struct Held {
    conn: PoolConnection<Postgres>,
    released: bool,
}

impl Held {
    /// Waits (up to the pool's acquire timeout) for a connection.
    async fn acquire(pool: &PgPool) -> AppResult<Held> {
        Ok(Held {
            conn: pool.acquire().await?,
            released: false,
        })
    }

    /// The connection, to run statements on.
    fn conn(&mut self) -> &mut PgConnection {
        &mut self.conn
    }

    /// The query finished (well or not): the connection goes back to the pool.
    fn release(mut self) {
        self.released = true;
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if !self.released {
            metrics::counter!("db_queries_abandoned_total").increment(1);
            self.conn.close_on_drop();
        }
    }
}

/// `'key', value` pairs of a layer's published properties for `json_build_object`.
fn json_props(layer: &LayerConfig) -> String {
    let mut parts = vec![format!("'id', t.{}", quote_ident(&layer.id_column))];
    for p in &layer.properties {
        parts.push(format!(
            "{}, t.{}::{}",
            sql_string(&p.name),
            quote_ident(p.column()),
            p.kind.sql_type()
        ));
    }
    format!("json_build_object({})", parts.join(", "))
}

fn sql_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The `ST_AsMVT` sub-select of one layer; `$1..$3` are z/x/y, `$4` metres per tile unit.
fn mvt_sql(layer: &LayerConfig) -> String {
    let geom = format!("t.{}", quote_ident(&layer.geometry_column));
    let mut merc = format!("ST_Transform({geom}, 3857)");
    let tol = layer.simplify_units();
    if tol > 0.0 && layer.geometry != GeometryKind::Point {
        merc = format!("ST_Simplify({merc}, $4 * {tol})");
    }
    let mut cols = vec![
        format!(
            "t.{id}::bigint AS \"__fid\"",
            id = quote_ident(&layer.id_column)
        ),
        format!(
            "t.{id}::bigint AS \"id\"",
            id = quote_ident(&layer.id_column)
        ),
    ];
    for p in &layer.properties {
        cols.push(format!(
            "t.{}::{} AS {}",
            quote_ident(p.column()),
            p.kind.sql_type(),
            quote_ident(&p.name)
        ));
    }
    format!(
        "COALESCE((SELECT ST_AsMVT(q, {name}, {EXTENT}, '__geom', '__fid') FROM (\
           SELECT {cols}, ST_AsMVTGeom({merc}, ST_TileEnvelope($1, $2, $3), {EXTENT}, {BUFFER}, true) AS \"__geom\" \
           FROM {table} t \
           WHERE {geom} && ST_Transform(ST_TileEnvelope($1, $2, $3, margin => {margin}), 4326) \
           ORDER BY t.{id}) q WHERE q.\"__geom\" IS NOT NULL), ''::bytea)",
        name = sql_string(&layer.name),
        cols = cols.join(", "),
        table = quote_ident(&layer.table),
        margin = BUFFER as f64 / EXTENT as f64,
        id = quote_ident(&layer.id_column),
    )
}

/// The features of one layer meeting the buffered tile, for the `rust` encoder: the layer's
/// number, the id, the properties as a JSON array (in the layer's order, cast to their types)
/// and the lon/lat geometry as WKB. `$1..$3` are z/x/y.
fn features_sql(number: usize, layer: &LayerConfig) -> String {
    let geom = format!("t.{}", quote_ident(&layer.geometry_column));
    let props: Vec<String> = layer
        .properties
        .iter()
        .map(|p| format!("t.{}::{}", quote_ident(p.column()), p.kind.sql_type()))
        .collect();
    format!(
        "SELECT {number}::int AS l, t.{id}::bigint AS id, json_build_array({props})::text AS p, \
           ST_AsBinary({geom}) AS g \
         FROM {table} t \
         WHERE {geom} && ST_Transform(ST_TileEnvelope($1, $2, $3, margin => {margin}), 4326)",
        id = quote_ident(&layer.id_column),
        props = props.join(", "),
        table = quote_ident(&layer.table),
        margin = BUFFER as f64 / EXTENT as f64,
    )
}

/// GeoJSON features of one layer clipped to the tile; `$1..$3` are z/x/y.
fn tile_features_sql(layer: &LayerConfig) -> String {
    let geom = format!("t.{}", quote_ident(layer.feature_geometry_column()));
    format!(
        "SELECT t.{id} AS fid, json_build_object('type', 'Feature', 'id', t.{id}, 'layer', {name}, \
           'geometry', ST_AsGeoJSON(c.g)::json, 'properties', {props})::text AS f \
         FROM {table} t, \
           LATERAL (SELECT ST_Transform(ST_TileEnvelope($1, $2, $3), 4326) AS env) e, \
           LATERAL (SELECT ST_ClipByBox2D({geom}, e.env::box2d) AS g) c \
         WHERE {geom} && e.env AND ST_Intersects({geom}, e.env) AND NOT ST_IsEmpty(c.g)",
        id = quote_ident(&layer.id_column),
        name = sql_string(&layer.name),
        props = json_props(layer),
        table = quote_ident(&layer.table),
    )
}

/// WHERE clause and binds of an items query; binds are numbered from 1.
fn items_where(layer: &LayerConfig, q: &ItemsQuery) -> AppResult<(String, Vec<BindValue>)> {
    let geom = format!("t.{}", quote_ident(layer.feature_geometry_column()));
    let mut conds = vec!["true".to_string()];
    let mut binds = Vec::new();
    if let Some(b) = &q.bbox {
        conds.push(format!(
            "{geom} && ST_MakeEnvelope($1, $2, $3, $4, 4326) AND ST_Intersects({geom}, ST_MakeEnvelope($1, $2, $3, $4, 4326))"
        ));
        binds.extend([b.minx, b.miny, b.maxx, b.maxy].map(BindValue::Float));
    }
    for (name, value) in &q.filters {
        let p = layer
            .property(name)
            .ok_or_else(|| AppError::bad(format!("unknown property {name:?}")))?;
        binds.push(BindValue::Text(value.clone()));
        conds.push(format!(
            "t.{}::{}::text = ${}",
            quote_ident(p.column()),
            p.kind.sql_type(),
            binds.len()
        ));
    }
    Ok((conds.join(" AND "), binds))
}

enum BindValue {
    Float(f64),
    Text(String),
    Int(i64),
}

fn bind_all<'q>(
    mut query: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    binds: &'q [BindValue],
) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
    for b in binds {
        query = match b {
            BindValue::Float(f) => query.bind(*f),
            BindValue::Text(s) => query.bind(s.as_str()),
            BindValue::Int(i) => query.bind(*i),
        };
    }
    query
}

#[async_trait]
impl Source for PostgisSource {
    fn name(&self) -> &'static str {
        "postgis"
    }

    async fn tile(&self, layers: &[&LayerConfig], tile: TileCoord) -> AppResult<Vec<u8>> {
        match self.encoder {
            TileEncoder::Rust => self.tile_from_features(layers, tile).await,
            TileEncoder::Postgis => self.tile_by_st_asmvt(layers, tile).await,
        }
    }

    async fn tile_features(
        &self,
        layers: &[&LayerConfig],
        tile: TileCoord,
    ) -> AppResult<Vec<String>> {
        let _admitted = self.admit()?;
        let selects: Vec<String> = layers
            .iter()
            .filter(|l| tile.z >= l.minzoom && tile.z <= l.maxzoom)
            .enumerate()
            .map(|(i, l)| {
                format!(
                    "SELECT {i} AS o, fid, f FROM ({}) s{i}",
                    tile_features_sql(l)
                )
            })
            .collect();
        if selects.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!("{} ORDER BY o, fid", selects.join(" UNION ALL "));
        let rows = self
            .tile_rows("tile_geojson", &sql, layers, tile, false)
            .await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>("f").map_err(AppError::from))
            .collect()
    }

    async fn count(&self, layer: &LayerConfig, query: &ItemsQuery) -> AppResult<u64> {
        let _admitted = self.admit()?;
        let (cond, binds) = items_where(layer, query)?;
        let sql = format!(
            "SELECT count(*) FROM {} t WHERE {cond}",
            quote_ident(&layer.table)
        );
        let mut held = Held::acquire(&self.pool).await?;
        let started = Instant::now();
        let row = bind_all(sqlx::query(&sql), &binds)
            .fetch_one(held.conn())
            .await;
        held.release();
        let n: i64 = row?.try_get(0)?;
        self.done("count", started, || format!("{} items", layer.name));
        Ok(n as u64)
    }

    async fn stream_items(
        &self,
        layer: &LayerConfig,
        query: &ItemsQuery,
        out: tokio::sync::mpsc::Sender<String>,
    ) -> AppResult<u64> {
        use futures::TryStreamExt;
        let _admitted = self.admit()?;
        let (cond, mut binds) = items_where(layer, query)?;
        let geom = format!("t.{}", quote_ident(layer.feature_geometry_column()));
        let geom_out = if query.clip && query.bbox.is_some() {
            format!("ST_ClipByBox2D({geom}, ST_MakeEnvelope($1, $2, $3, $4, 4326)::box2d)")
        } else {
            geom.clone()
        };
        binds.push(BindValue::Int(query.limit as i64));
        let limit_at = binds.len();
        binds.push(BindValue::Int(query.offset as i64));
        let offset_at = binds.len();
        let sql = format!(
            "SELECT json_build_object('type', 'Feature', 'id', t.{id}, 'geometry', ST_AsGeoJSON({geom_out})::json, \
               'properties', {props})::text FROM {table} t WHERE {cond} \
             ORDER BY t.{id} LIMIT ${limit_at} OFFSET ${offset_at}",
            id = quote_ident(&layer.id_column),
            props = json_props(layer),
            table = quote_ident(&layer.table),
        );
        let mut held = Held::acquire(&self.pool).await?;
        let started = Instant::now();
        let (mut sent, mut finished) = (0, false);
        let streamed: AppResult<()> = async {
            let mut rows = bind_all(sqlx::query(&sql), &binds).fetch(held.conn());
            while let Some(row) = rows.try_next().await? {
                if out.send(row.try_get::<String, _>(0)?).await.is_err() {
                    // The client went away: the rest of the query is abandoned with it.
                    return Ok(());
                }
                sent += 1;
            }
            finished = true;
            Ok(())
        }
        .await;
        if finished || streamed.is_err() {
            held.release();
        }
        streamed?;
        self.done("items", started, || {
            format!(
                "{} items offset {} limit {}",
                layer.name, query.offset, query.limit
            )
        });
        Ok(sent)
    }

    async fn item(&self, layer: &LayerConfig, id: i64) -> AppResult<Option<String>> {
        let _admitted = self.admit()?;
        let geom = format!("t.{}", quote_ident(layer.feature_geometry_column()));
        let sql = format!(
            "SELECT json_build_object('type', 'Feature', 'id', t.{id}, 'geometry', ST_AsGeoJSON({geom})::json, \
               'properties', {props})::text FROM {table} t WHERE t.{id} = $1",
            id = quote_ident(&layer.id_column),
            props = json_props(layer),
            table = quote_ident(&layer.table),
        );
        let mut held = Held::acquire(&self.pool).await?;
        let row = sqlx::query(&sql).bind(id).fetch_optional(held.conn()).await;
        held.release();
        Ok(row?.map(|r| r.try_get::<String, _>(0)).transpose()?)
    }

    async fn stats(&self, layer: &LayerConfig) -> AppResult<LayerStats> {
        let sql = format!(
            "SELECT n, ST_XMin(e)::float8, ST_YMin(e)::float8, ST_XMax(e)::float8, ST_YMax(e)::float8 \
             FROM (SELECT count(*)::bigint AS n, ST_Extent(t.{geom}) AS e FROM {table} t) s",
            geom = quote_ident(&layer.geometry_column),
            table = quote_ident(&layer.table),
        );
        let row = sqlx::query(&sql).fetch_one(&self.pool).await?;
        let count: i64 = row.try_get(0)?;
        let corners: [Option<f64>; 4] = [
            row.try_get(1)?,
            row.try_get(2)?,
            row.try_get(3)?,
            row.try_get(4)?,
        ];
        let bounds = match corners {
            [Some(minx), Some(miny), Some(maxx), Some(maxy)] => Some(crate::tiles::grid::Bounds {
                minx,
                miny,
                maxx,
                maxy,
            }),
            _ => None,
        };
        Ok(LayerStats {
            count: count as u64,
            bounds,
        })
    }

    async fn rows(&self, layer: &LayerConfig) -> AppResult<Vec<NetworkRow>> {
        let sql = format!(
            "SELECT t.{id}::bigint, ST_AsGeoJSON(t.{geom})::text, {props}::text FROM {table} t ORDER BY t.{id}",
            id = quote_ident(&layer.id_column),
            geom = quote_ident(layer.feature_geometry_column()),
            props = json_props(layer),
            table = quote_ident(&layer.table),
        );
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let geometry: Option<String> = r.try_get(1)?;
                let props: String = r.try_get(2)?;
                Ok(NetworkRow {
                    id: r.try_get(0)?,
                    geometry: geometry
                        .and_then(|g| serde_json::from_str(&g).ok())
                        .unwrap_or(Value::Null),
                    properties: serde_json::from_str(&props).unwrap_or_default(),
                })
            })
            .collect()
    }

    async fn search(&self, layer: &LayerConfig, q: &str, limit: usize) -> AppResult<SearchPage> {
        let _admitted = self.admit()?;
        let fields: Vec<String> = SEARCH_FIELDS
            .iter()
            .filter_map(|f| layer.property(f))
            .map(|p| format!("t.{}::text", quote_ident(p.column())))
            .collect();
        if fields.is_empty() {
            return Ok(SearchPage::default());
        }
        let col = |name: &str| {
            layer
                .property(name)
                .map(|p| format!("t.{}::text", quote_ident(p.column())))
                .unwrap_or_else(|| "NULL::text".into())
        };
        let code = col("short_code");
        let conds: Vec<String> = fields
            .iter()
            .map(|f| format!("{f} ILIKE $1 ESCAPE '\\'"))
            .collect();
        let sql = format!(
            "SELECT t.{id}::bigint, {code}, {name}, {desc}, count(*) OVER ()::bigint FROM {table} t \
             WHERE {conds} \
             ORDER BY CASE WHEN lower({code}) = lower($2) THEN 0 WHEN {code} ILIKE $3 ESCAPE '\\' THEN 1 ELSE 2 END, \
               {code}, t.{id} LIMIT $4",
            id = quote_ident(&layer.id_column),
            name = col("name"),
            desc = col("description"),
            table = quote_ident(&layer.table),
            conds = conds.join(" OR "),
        );
        let escaped = q
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let mut held = Held::acquire(&self.pool).await?;
        let started = Instant::now();
        let rows = sqlx::query(&sql)
            .bind(format!("%{escaped}%"))
            .bind(q)
            .bind(format!("{escaped}%"))
            .bind(limit as i64)
            .fetch_all(held.conn())
            .await;
        held.release();
        let rows = rows?;
        self.done("search", started, || format!("search {}", layer.name));
        let mut page = SearchPage::default();
        for r in rows {
            page.total = r.try_get::<i64, _>(4)? as u64;
            page.hits.push(SearchHit {
                id: r.try_get(0)?,
                short_code: r.try_get(1)?,
                name: r.try_get(2)?,
                description: r.try_get(3)?,
            });
        }
        Ok(page)
    }

    async fn ready(&self) -> AppResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    fn pool_status(&self) -> Option<crate::source::PoolStatus> {
        Some(crate::source::PoolStatus {
            max: self.pool.options().get_max_connections(),
            size: self.pool.size(),
            idle: self.pool.num_idle() as u32,
        })
    }
}

/// How a tile is named in logs: `nodes,arcs 8/41/98`.
fn tile_name(layers: &[&LayerConfig], tile: TileCoord) -> String {
    let names: Vec<&str> = layers.iter().map(|l| l.name.as_str()).collect();
    format!("{} {}/{}/{}", names.join(","), tile.z, tile.x, tile.y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("error connecting to postgres://u:secret@host:5432/db"),
            "error connecting to postgres://u:***@host:5432/db"
        );
        assert_eq!(redact("postgres://u@host/db"), "postgres://u@host/db");
        assert_eq!(
            redact("a postgres://a:b@h/x and postgres://c:d@e:1/y"),
            "a postgres://a:***@h/x and postgres://c:***@e:1/y"
        );
    }
}
