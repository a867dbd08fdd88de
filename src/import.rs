//! `import`: GeoJSON layer files into the PostGIS tables, idempotently.
//!
//! A file is matched to a layer by its name (`nodes.geojson` -> the `nodes` layer), read whole
//! and checked through `data.rs` before the database is touched, then every file of one import
//! is written in one transaction: a bad file changes nothing, not even the files before it. Rows are upserted by id; a feature keeps its GeoJSON
//! id, one without an id takes the id of the row with its key, or else the next free id.

use crate::config::{GeometryKind, LayerConfig, quote_ident};
use crate::data::{LayerFeature, layer_files, read_layer_file};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use sqlx::{PgPool, Row};
use std::collections::HashMap;
use std::path::PathBuf;

/// What one file import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Layer name.
    pub layer: String,
    /// Rows created.
    pub inserted: u64,
    /// Rows updated in place.
    pub updated: u64,
}

/// Resolves paths (files or folders) to the layer each file feeds.
pub fn plan<'a>(
    paths: &[PathBuf],
    layers: &'a [LayerConfig],
) -> anyhow::Result<Vec<(&'a LayerConfig, PathBuf)>> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            let found = layer_files(path, layers);
            anyhow::ensure!(
                !found.is_empty(),
                "{}: no layer file found (expected {})",
                path.display(),
                layers
                    .iter()
                    .map(|l| format!("{}.geojson", l.file()))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            out.extend(found);
        } else {
            let stem = path
                .file_name()
                .and_then(|n| n.to_str())
                .map(|n| n.trim_end_matches(".geojson").trim_end_matches(".json"))
                .unwrap_or_default();
            let layer = layers.iter().find(|l| l.file() == stem).ok_or_else(|| {
                anyhow::anyhow!(
                    "{}: no layer reads a file named {stem:?} (layers: {})",
                    path.display(),
                    layers
                        .iter()
                        .map(|l| l.file())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
            out.push((layer, path.clone()));
        }
    }
    Ok(out)
}

/// Imports files (or folders of them) all or nothing: every file is read and checked before the
/// database is touched, then all are written in one transaction, so a bad file (or a feature the
/// database refuses) leaves every table as it was, and readers see the new data all at once.
pub async fn import_paths(
    pool: &PgPool,
    paths: &[PathBuf],
    layers: &[LayerConfig],
    progress: bool,
) -> anyhow::Result<Vec<ImportSummary>> {
    let mut parsed = Vec::new();
    for (layer, path) in plan(paths, layers)? {
        let features = read_layer_file(&path, layer)?;
        parsed.push((layer, path, features));
    }
    let mut tx = pool.begin().await?;
    let mut out = Vec::new();
    for (layer, path, features) in &parsed {
        let summary = import_features(&mut tx, layer, features, progress)
            .await
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        out.push(summary);
    }
    tx.commit().await?;
    Ok(out)
}

/// Writes parsed features into their layer's table, inside the caller's transaction.
pub async fn import_features(
    tx: &mut sqlx::PgConnection,
    layer: &LayerConfig,
    features: &[LayerFeature],
    progress: bool,
) -> anyhow::Result<ImportSummary> {
    let table = quote_ident(&layer.table);
    let id_col = quote_ident(&layer.id_column);
    let key = layer.key_column.as_deref();
    let key_index = key.and_then(|k| layer.properties.iter().position(|p| p.column() == k));
    // Existing ids by key, so features without an id keep the row they had.
    let mut by_key: HashMap<String, i64> = HashMap::new();
    if let Some(k) = key {
        let rows = sqlx::query(&format!(
            "SELECT {}::text, {id_col}::bigint FROM {table}",
            quote_ident(k)
        ))
        .fetch_all(&mut *tx)
        .await?;
        for r in rows {
            by_key.insert(r.try_get(0)?, r.try_get(1)?);
        }
    }
    let max_id: Option<i64> = sqlx::query(&format!("SELECT max({id_col})::bigint FROM {table}"))
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
    let mut next_id = max_id
        .unwrap_or(0)
        .max(features.iter().filter_map(|f| f.id).max().unwrap_or(0))
        + 1;

    let geom_col = quote_ident(&layer.geometry_column);
    let columns: Vec<String> = layer
        .properties
        .iter()
        .map(|p| quote_ident(p.column()))
        .collect();
    let placeholders: Vec<String> = layer
        .properties
        .iter()
        .enumerate()
        .map(|(i, p)| format!("${}::{}", i + 2, p.kind.sql_type()))
        .collect();
    let geom_at = layer.properties.len() + 2;
    let geom_expr = match layer.geometry {
        GeometryKind::Point => format!("ST_SetSRID(ST_GeomFromGeoJSON(${geom_at}), 4326)"),
        GeometryKind::Line => {
            format!("ST_SetSRID(ST_LineMerge(ST_GeomFromGeoJSON(${geom_at})), 4326)")
        }
        GeometryKind::Polygon => {
            format!("ST_SetSRID(ST_Multi(ST_GeomFromGeoJSON(${geom_at})), 4326)")
        }
    };
    let updates: Vec<String> = columns
        .iter()
        .chain(std::iter::once(&geom_col))
        .map(|c| format!("{c} = EXCLUDED.{c}"))
        .collect();
    let upsert = format!(
        "INSERT INTO {table} ({id_col}, {cols}, {geom_col}) VALUES ($1, {vals}, {geom_expr}) \
         ON CONFLICT ({id_col}) DO UPDATE SET {updates} RETURNING (xmax = 0) AS inserted",
        cols = columns.join(", "),
        vals = placeholders.join(", "),
        updates = updates.join(", "),
    );
    // A key that moved to another id frees its old row first, so keys stay unique.
    let free_key = key.map(|k| {
        format!(
            "DELETE FROM {table} WHERE {}::text = $1 AND {id_col} <> $2",
            quote_ident(k)
        )
    });

    // Names a feature the database refused: its index, and its key when it has one.
    let which = |i: usize, value: Option<&str>| match (key, value) {
        (Some(name), Some(v)) if !v.is_empty() => {
            format!("feature {i} ({name} {:?})", crate::app::truncate(v, 64))
        }
        _ => format!("feature {i}"),
    };
    let bar = if progress {
        let bar = ProgressBar::new(features.len() as u64);
        if let Ok(style) = ProgressStyle::with_template("{msg:>14} [{bar:40}] {pos}/{len}") {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(layer.name.clone());
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut summary = ImportSummary {
        layer: layer.name.clone(),
        ..Default::default()
    };
    for (i, f) in features.iter().enumerate() {
        let key_value = key_index.and_then(|k| f.props[k].as_str().map(str::to_string));
        let id = match (f.id, key_value.as_ref().and_then(|k| by_key.get(k))) {
            (Some(id), _) => id,
            (None, Some(&id)) => id,
            (None, None) => {
                next_id += 1;
                next_id - 1
            }
        };
        if let (Some(sql), Some(k)) = (&free_key, &key_value) {
            sqlx::query(sql)
                .bind(k)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(|e| anyhow::anyhow!("{}: {e}", which(i, key_value.as_deref())))?;
        }
        let mut q = sqlx::query(&upsert).bind(id);
        for v in &f.props {
            q = match v {
                Value::Null => q.bind(None::<String>),
                Value::String(s) => q.bind(s.as_str()),
                other => q.bind(other.to_string()),
            };
        }
        let geometry = geojson::Geometry::from(&f.geometry).to_string();
        let row = q
            .bind(geometry)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| anyhow::anyhow!("{}: {e}", which(i, key_value.as_deref())))?;
        if row.try_get::<bool, _>(0)? {
            summary.inserted += 1;
        } else {
            summary.updated += 1;
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(summary)
}
