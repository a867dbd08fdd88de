//! TileJSON 3.0.0 and the catalog: what a client needs to know before asking for tiles.
//!
//! Both documents are plain functions of the configuration and the layers' statistics, so they
//! are tested without HTTP; the handlers only gather the statistics and the base URL.

use crate::config::LayerConfig;
use crate::source::LayerStats;
use crate::tiles::grid::Bounds;
use serde_json::{Map, Value, json};

/// Union of the layers' extents; the whole world when none has features.
pub fn union_bounds(stats: &[LayerStats]) -> Option<Bounds> {
    stats.iter().filter_map(|s| s.bounds).reduce(|a, b| Bounds {
        minx: a.minx.min(b.minx),
        miny: a.miny.min(b.miny),
        maxx: a.maxx.max(b.maxx),
        maxy: a.maxy.max(b.maxy),
    })
}

fn fields(layer: &LayerConfig) -> Map<String, Value> {
    layer
        .fields()
        .into_iter()
        .map(|(name, kind)| (name.to_string(), Value::from(kind)))
        .collect()
}

/// The TileJSON document of a layer set served under `base`.
pub fn tilejson(layers: &[&LayerConfig], stats: &[LayerStats], base: &str) -> Value {
    let names: Vec<&str> = layers.iter().map(|l| l.name.as_str()).collect();
    let joined = names.join(",");
    let minzoom = layers.iter().map(|l| l.minzoom).min().unwrap_or(0);
    let maxzoom = layers.iter().map(|l| l.maxzoom).max().unwrap_or(22);
    let b = union_bounds(stats).unwrap_or(Bounds {
        minx: -180.0,
        miny: -85.051_128_779_806_59,
        maxx: 180.0,
        maxy: 85.051_128_779_806_59,
    });
    let center_zoom = minzoom.max(6).min(maxzoom);
    let vector_layers: Vec<Value> = layers
        .iter()
        .map(|l| {
            json!({
                "id": l.name,
                "description": l.title.clone().unwrap_or_default(),
                "fields": fields(l),
                "minzoom": l.minzoom,
                "maxzoom": l.maxzoom,
            })
        })
        .collect();
    json!({
        "tilejson": "3.0.0",
        "name": joined,
        "description": format!("CalSim3 network layers: {}", names.join(", ")),
        "scheme": "xyz",
        "tiles": [format!("{base}/tiles/{joined}/{{z}}/{{x}}/{{y}}.mvt")],
        "vector_layers": vector_layers,
        "minzoom": minzoom,
        "maxzoom": maxzoom,
        "bounds": [b.minx, b.miny, b.maxx, b.maxy],
        "center": [(b.minx + b.maxx) / 2.0, (b.miny + b.maxy) / 2.0, center_zoom],
    })
}

/// The catalog: every layer with its geometry, fields, zooms, extent and size.
pub fn catalog(layers: &[LayerConfig], stats: &[LayerStats], base: &str) -> Value {
    let entries: Vec<Value> = layers
        .iter()
        .zip(stats)
        .map(|(l, s)| {
            json!({
                "name": l.name,
                "title": l.title.clone().unwrap_or_default(),
                "geometry_type": l.geometry.name(),
                "fields": fields(l),
                "minzoom": l.minzoom,
                "maxzoom": l.maxzoom,
                "bounds": s.bounds.map(|b| vec![b.minx, b.miny, b.maxx, b.maxy]),
                "feature_count": s.count,
                "tilejson": format!("{base}/tiles/{}.json", l.name),
                "items": format!("{base}/collections/{}/items", l.name),
            })
        })
        .collect();
    json!({ "layers": entries })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::default_layers;

    #[test]
    fn tilejson_names_every_layer_and_field() {
        let layers = default_layers();
        let refs: Vec<&LayerConfig> = layers.iter().collect();
        let stats = vec![
            LayerStats {
                count: 2,
                bounds: Some(Bounds {
                    minx: -122.0,
                    miny: 37.0,
                    maxx: -121.0,
                    maxy: 38.0
                })
            };
            3
        ];
        let tj = tilejson(&refs, &stats, "http://h");
        assert_eq!(tj["tilejson"], "3.0.0");
        assert_eq!(
            tj["tiles"][0],
            "http://h/tiles/nodes,arcs,demand_units/{z}/{x}/{y}.mvt"
        );
        assert_eq!(tj["vector_layers"][0]["fields"]["capacity_taf"], "Number");
        assert_eq!(tj["vector_layers"][1]["fields"]["from_node"], "String");
        assert_eq!(tj["bounds"][0], -122.0);
        assert_eq!(tj["center"][0], -121.5);
    }
}
