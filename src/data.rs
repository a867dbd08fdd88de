//! Reading GeoJSON layer files into typed features, shared by `import` and the memory source.
//!
//! Both paths must agree on what a file means, so the reading lives here once: the layer's
//! configuration says which GeoJSON key feeds which property and with what type, which geometry
//! kinds are accepted, and which property is the unique key. A file that breaks any of that is
//! refused whole, with the file and the feature index in the message.

use crate::config::{GeometryKind, LayerConfig, PropertyType};
use geo::Geometry;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// One feature of a layer, its properties in the layer's configured order.
#[derive(Debug, Clone)]
pub struct LayerFeature {
    /// GeoJSON `id`, when the file gives one.
    pub id: Option<i64>,
    /// Geometry in lon/lat.
    pub geometry: Geometry<f64>,
    /// Values aligned with `LayerConfig::properties`, already coerced to their types.
    pub props: Vec<Value>,
}

/// Reads one layer file.
pub fn read_layer_file(path: &Path, layer: &LayerConfig) -> anyhow::Result<Vec<LayerFeature>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
    parse_layer(&text, layer).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Finds the file of each configured layer in a folder; layers without a file are skipped.
pub fn layer_files<'a>(dir: &Path, layers: &'a [LayerConfig]) -> Vec<(&'a LayerConfig, PathBuf)> {
    layers
        .iter()
        .filter_map(|l| {
            let p = dir.join(format!("{}.geojson", l.file()));
            p.is_file().then_some((l, p))
        })
        .collect()
}

/// Parses GeoJSON text as a layer; the error names the feature index.
pub fn parse_layer(text: &str, layer: &LayerConfig) -> Result<Vec<LayerFeature>, String> {
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    let features = match doc.get("type").and_then(Value::as_str) {
        Some("FeatureCollection") => doc
            .get("features")
            .and_then(Value::as_array)
            .ok_or("FeatureCollection without a features array")?,
        _ => return Err("not a GeoJSON FeatureCollection".into()),
    };
    let key_index = layer.key_column.as_ref().and_then(|k| {
        layer
            .properties
            .iter()
            .position(|p| p.column() == k.as_str())
    });
    let key_field = key_index.map(|k| layer.properties[k].field());
    let mut keys: HashMap<String, usize> = HashMap::new();
    let mut ids: HashMap<i64, usize> = HashMap::new();
    let mut out = Vec::with_capacity(features.len());
    for (i, f) in features.iter().enumerate() {
        // "feature 12 (short_code \"SHSTA\")": the index, and the key when the feature has one.
        let which = || {
            let key = key_field.and_then(|field| f.get("properties")?.get(field)?.as_str());
            match (key_field, key) {
                (Some(field), Some(key)) if !key.is_empty() => {
                    format!("feature {i} ({field} {:?})", crate::app::truncate(key, 64))
                }
                _ => format!("feature {i}"),
            }
        };
        let feature = parse_feature(f, layer).map_err(|e| format!("{}: {e}", which()))?;
        if let Some(id) = feature.id
            && let Some(first) = ids.insert(id, i)
        {
            return Err(format!(
                "{}: duplicate id {id} (also feature {first})",
                which()
            ));
        }
        if let (Some(k), Some(name)) = (key_index, key_field) {
            let key = feature.props[k].as_str().unwrap_or_default();
            if key.is_empty() {
                return Err(format!("feature {i}: missing key {name:?}"));
            }
            if let Some(first) = keys.insert(key.to_string(), i) {
                return Err(format!(
                    "feature {i}: duplicate {name} {:?} (also feature {first})",
                    crate::app::truncate(key, 64)
                ));
            }
        }
        out.push(feature);
    }
    Ok(out)
}

fn parse_feature(f: &Value, layer: &LayerConfig) -> Result<LayerFeature, String> {
    let id = match f.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(n.as_i64().ok_or(format!("id {n} is not an integer"))?),
        Some(Value::String(s)) => Some(
            s.parse::<i64>()
                .map_err(|_| format!("id {s:?} is not an integer"))?,
        ),
        Some(other) => return Err(format!("id {other} is not an integer")),
    };
    let geom_json = f
        .get("geometry")
        .filter(|g| !g.is_null())
        .ok_or("no geometry")?;
    let gj = geojson::Geometry::from_json_value(geom_json.clone())
        .map_err(|e| format!("bad geometry: {e}"))?;
    let geometry: Geometry<f64> = gj
        .try_into()
        .map_err(|e: geojson::Error| format!("bad geometry: {e}"))?;
    check_kind(&geometry, layer.geometry)?;
    let empty = serde_json::Map::new();
    let props_in = f
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let props = layer
        .properties
        .iter()
        .map(|p| {
            coerce(props_in.get(p.field()).unwrap_or(&Value::Null), p.kind)
                .map_err(|e| format!("property {:?}: {e}", p.field()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(LayerFeature {
        id,
        geometry,
        props,
    })
}

fn check_kind(g: &Geometry<f64>, kind: GeometryKind) -> Result<(), String> {
    let ok = matches!(
        (g, kind),
        (Geometry::Point(_), GeometryKind::Point)
            | (Geometry::LineString(_), GeometryKind::Line)
            | (Geometry::MultiLineString(_), GeometryKind::Line)
            | (Geometry::Polygon(_), GeometryKind::Polygon)
            | (Geometry::MultiPolygon(_), GeometryKind::Polygon)
    );
    if ok {
        Ok(())
    } else {
        Err(format!(
            "geometry type {} does not fit a {} layer",
            geometry_name(g),
            kind.name()
        ))
    }
}

fn geometry_name(g: &Geometry<f64>) -> &'static str {
    match g {
        Geometry::Point(_) => "Point",
        Geometry::Line(_) => "Line",
        Geometry::LineString(_) => "LineString",
        Geometry::Polygon(_) => "Polygon",
        Geometry::MultiPoint(_) => "MultiPoint",
        Geometry::MultiLineString(_) => "MultiLineString",
        Geometry::MultiPolygon(_) => "MultiPolygon",
        Geometry::GeometryCollection(_) => "GeometryCollection",
        Geometry::Rect(_) => "Rect",
        Geometry::Triangle(_) => "Triangle",
    }
}

/// Coerces a JSON value to a property type; `null` (and "" for non-strings) stays null.
pub fn coerce(v: &Value, kind: PropertyType) -> Result<Value, String> {
    Ok(match (kind, v) {
        (_, Value::Null) => Value::Null,
        (PropertyType::String, Value::String(_)) => v.clone(),
        (PropertyType::String, Value::Number(n)) => Value::String(n.to_string()),
        (PropertyType::String, Value::Bool(b)) => Value::String(b.to_string()),
        (_, Value::String(s)) if s.trim().is_empty() => Value::Null,
        (PropertyType::Number, Value::Number(n)) => {
            serde_json::json!(n.as_f64().ok_or("number out of range")?)
        }
        (PropertyType::Number, Value::String(s)) => serde_json::json!(
            s.trim()
                .parse::<f64>()
                .map_err(|_| format!("{s:?} is not a number"))?
        ),
        (PropertyType::Integer, Value::Number(n)) => match n.as_i64() {
            Some(i) => serde_json::json!(i),
            None => return Err(format!("{n} is not an integer")),
        },
        (PropertyType::Integer, Value::String(s)) => serde_json::json!(
            s.trim()
                .parse::<i64>()
                .map_err(|_| format!("{s:?} is not an integer"))?
        ),
        (PropertyType::Boolean, Value::Bool(_)) => v.clone(),
        (PropertyType::Boolean, Value::String(s)) => match s.as_str() {
            "true" | "t" | "1" => Value::Bool(true),
            "false" | "f" | "0" => Value::Bool(false),
            _ => return Err(format!("{s:?} is not a boolean")),
        },
        (k, other) => return Err(format!("{other} is not a {k:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::default_layers;

    #[test]
    fn refuses_wrong_geometry_and_duplicates() {
        let layers = default_layers();
        let nodes = &layers[0];
        let line = r#"{"type":"FeatureCollection","features":[{"type":"Feature","id":1,
          "geometry":{"type":"LineString","coordinates":[[0,0],[1,1]]},"properties":{"short_code":"A"}}]}"#;
        let e = parse_layer(line, nodes).unwrap_err();
        assert!(e.contains("feature 0") && e.contains("LineString"), "{e}");
        let dup = r#"{"type":"FeatureCollection","features":[
          {"type":"Feature","id":1,"geometry":{"type":"Point","coordinates":[0,0]},"properties":{"short_code":"A"}},
          {"type":"Feature","id":2,"geometry":{"type":"Point","coordinates":[0,0]},"properties":{"short_code":"A"}}]}"#;
        let e = parse_layer(dup, nodes).unwrap_err();
        assert!(e.contains("feature 1") && e.contains("duplicate"), "{e}");
        let nokey = r#"{"type":"FeatureCollection","features":[
          {"type":"Feature","id":1,"geometry":{"type":"Point","coordinates":[0,0]},"properties":{}}]}"#;
        assert!(
            parse_layer(nokey, nodes)
                .unwrap_err()
                .contains("missing key")
        );
        assert!(parse_layer("{", nodes).unwrap_err().contains("JSON"));
    }

    #[test]
    fn coerces_types() {
        assert_eq!(
            coerce(&serde_json::json!(4552), PropertyType::Number).unwrap(),
            serde_json::json!(4552.0)
        );
        assert_eq!(
            coerce(&serde_json::json!(""), PropertyType::Number).unwrap(),
            Value::Null
        );
        assert!(coerce(&serde_json::json!("x"), PropertyType::Number).is_err());
    }
}
