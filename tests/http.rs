//! HTTP: the real router on a free port, spoken to with `reqwest`, field by field.
//!
//! One list of checks (`check_routes`) runs against the memory source and against PostGIS,
//! both holding the real CalSim3 data: tiles (decoded with `mvt-reader`, not our encoder),
//! tile GeoJSON, TileJSON, the catalog, feature pages and their `next` links, health, and
//! every kind of bad input, which must be a 4xx problem+json that says what was wrong. A
//! third test checks the embedded sample. Checks are collected rather than stopped at the
//! first failure, so one run lists every wrong answer, each naming its URL.

mod common;

use axum::response::IntoResponse;
use coeqwal_network_api::config::Config;
use coeqwal_network_api::source::memory::MemorySource;
use coeqwal_network_api::tiles::grid::{Bounds, TileCoord};
use geo::{Intersects, Rect};
use mvt_reader::feature::Value as MvtValue;
use serde_json::Value;
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

/// The real data's extent (README of the CalSim3 data).
const EXTENT: [f64; 4] = [-122.80, 35.99, -119.71, 40.80];
/// The tile of the Sacramento, the Delta and Stockton: all three layers meet in it.
const TILE: TileCoord = TileCoord { z: 8, x: 41, y: 98 };
/// Slack for coordinates compared with tile or bbox edges, in degrees.
const EPS: f64 = 1e-9;

/// Failures gathered across a run; `finish` fails the test with all of them.
#[derive(Default)]
struct Checks {
    failures: Vec<String>,
    passed: usize,
}

impl Checks {
    fn ok(&mut self, cond: bool, msg: impl FnOnce() -> String) -> bool {
        if cond {
            self.passed += 1;
        } else {
            self.failures.push(msg());
        }
        cond
    }

    fn finish(self, label: &str) {
        println!(
            "{label}: {} checks passed, {} failed",
            self.passed,
            self.failures.len()
        );
        assert!(
            self.failures.is_empty(),
            "{label}: {} check(s) failed:\n  - {}",
            self.failures.len(),
            self.failures.join("\n  - ")
        );
    }
}

/// One HTTP answer, read whole.
struct Reply {
    url: String,
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body)
            .chars()
            .take(400)
            .collect()
    }

    /// The body as JSON, or a failure naming the URL.
    fn json(&self, c: &mut Checks) -> Option<Value> {
        match serde_json::from_slice::<Value>(&self.body) {
            Ok(v) => Some(v),
            Err(e) => {
                c.ok(false, || {
                    format!("{}: body is not JSON ({e}): {:?}", self.url, self.text())
                });
                None
            }
        }
    }
}

async fn get(client: &reqwest::Client, url: &str) -> Reply {
    let response = client
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: request failed: {e}"));
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = response
        .bytes()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: body could not be read: {e}"))
        .to_vec();
    Reply {
        url: url.to_string(),
        status,
        content_type,
        body,
    }
}

/// Status and media type (parameters such as `; charset` ignored).
fn expect_head(c: &mut Checks, r: &Reply, status: u16, media: &str) -> bool {
    let a = c.ok(r.status == status, || {
        format!(
            "{}: status {} (expected {status}); body {:?}",
            r.url,
            r.status,
            r.text()
        )
    });
    let essence = r.content_type.split(';').next().unwrap_or("").trim();
    let b = c.ok(essence.eq_ignore_ascii_case(media), || {
        format!(
            "{}: Content-Type {:?} (expected {media})",
            r.url, r.content_type
        )
    });
    a && b
}

fn mvt_int(v: &MvtValue) -> Option<i128> {
    match v {
        MvtValue::Int(i) | MvtValue::SInt(i) => Some(*i as i128),
        MvtValue::UInt(u) => Some(*u as i128),
        _ => None,
    }
}

/// Every [x, y] position inside a GeoJSON geometry.
fn positions(geometry: &Value, out: &mut Vec<(f64, f64)>) {
    fn walk(v: &Value, out: &mut Vec<(f64, f64)>) {
        if let Some(a) = v.as_array() {
            if let (Some(x), Some(y)) = (
                a.first().and_then(Value::as_f64),
                a.get(1).and_then(Value::as_f64),
            ) {
                out.push((x, y));
            } else {
                for item in a {
                    walk(item, out);
                }
            }
        }
    }
    if let Some(gs) = geometry.get("geometries").and_then(Value::as_array) {
        for g in gs {
            positions(g, out);
        }
    } else if let Some(coords) = geometry.get("coordinates") {
        walk(coords, out);
    }
}

fn inside(b: &Bounds, (x, y): (f64, f64), eps: f64) -> bool {
    x >= b.minx - eps && x <= b.maxx + eps && y >= b.miny - eps && y <= b.maxy + eps
}

fn to_geo(geometry: &Value) -> Option<geo::Geometry<f64>> {
    let g = geojson::Geometry::from_json_value(geometry.clone()).ok()?;
    geo::Geometry::<f64>::try_from(g).ok()
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

/// Every check of the HTTP surface, against a server holding the real CalSim3 data.
async fn check_routes(base: &str) {
    let client = reqwest::Client::new();
    let mut c = Checks::default();
    let mvt_nodes = check_mvt(&mut c, &client, base).await;
    check_tile_geojson(&mut c, &client, base, &mvt_nodes).await;
    check_tilejson(&mut c, &client, base).await;
    check_catalog(&mut c, &client, base).await;
    check_items(&mut c, &client, base).await;
    check_ogc(&mut c, &client, base).await;
    check_health(&mut c, &client, base).await;
    check_bad_input(&mut c, &client, base).await;
    c.finish(base);
}

/// Checks the tile of all three layers; returns the ids of its nodes.
async fn check_mvt(c: &mut Checks, client: &reqwest::Client, base: &str) -> HashSet<u64> {
    let url = format!(
        "{base}/tiles/nodes,arcs,demand_units/{}/{}/{}.mvt",
        TILE.z, TILE.x, TILE.y
    );
    let r = get(client, &url).await;
    if !expect_head(c, &r, 200, "application/vnd.mapbox-vector-tile") {
        return HashSet::new();
    }
    let decoded = match std::panic::catch_unwind(|| common::decode(&r.body))
        .map_err(|_| "decoder panicked")
    {
        Ok(d) => d,
        Err(e) => {
            c.ok(false, || format!("{url}: tile does not decode: {e}"));
            return HashSet::new();
        }
    };
    let names: BTreeSet<&str> = decoded.keys().map(String::as_str).collect();
    c.ok(
        names == BTreeSet::from(["nodes", "arcs", "demand_units"]),
        || format!("{url}: layers {names:?} (expected nodes, arcs, demand_units)"),
    );
    for (layer, features) in &decoded {
        c.ok(!features.is_empty(), || {
            format!("{url}: layer {layer} has no features")
        });
        let mut ids = HashSet::new();
        for (i, f) in features.iter().enumerate() {
            let Some(id) = f.id else {
                c.ok(false, || format!("{url}: {layer} feature #{i} has no id"));
                continue;
            };
            c.ok(ids.insert(id), || {
                format!("{url}: {layer} id {id} appears twice")
            });
            let props = f.properties.clone().unwrap_or_default();
            let prop = props.get("id");
            c.ok(prop.and_then(mvt_int) == Some(id as i128), || {
                format!("{url}: {layer} feature {id}: \"id\" property is {prop:?}")
            });
            // Typed properties: text stays text, numbers are doubles, nulls are left out.
            let (strings, numbers): (&[&str], &[&str]) = match layer.as_str() {
                "nodes" => (
                    &["short_code", "node_type", "name", "hydrologic_region"],
                    &[
                        "capacity_taf",
                        "river_mile",
                        "dead_pool_taf",
                        "surface_area_acres",
                    ],
                ),
                "arcs" => (
                    &["short_code", "arc_type", "from_node", "to_node"],
                    &["length_m"],
                ),
                _ => (&["du_id", "kind", "name"], &["acres"]),
            };
            for k in strings {
                if let Some(v) = props.get(*k) {
                    c.ok(matches!(v, MvtValue::String(_)), || {
                        format!("{url}: {layer} feature {id}: {k} is {v:?}, expected a String")
                    });
                }
            }
            for k in numbers {
                if let Some(v) = props.get(*k) {
                    c.ok(matches!(v, MvtValue::Double(_)), || {
                        format!("{url}: {layer} feature {id}: {k} is {v:?}, expected a Double")
                    });
                }
            }
            let key = match layer.as_str() {
                "demand_units" => "du_id",
                _ => "short_code",
            };
            c.ok(
                matches!(props.get(key), Some(MvtValue::String(s)) if !s.is_empty()),
                || format!("{url}: {layer} feature {id}: {key} is {:?}", props.get(key)),
            );
        }
    }
    if let Some(nodes) = decoded.get("nodes") {
        let reservoirs: Vec<_> = nodes
            .iter()
            .filter_map(|f| f.properties.as_ref()?.get("capacity_taf").cloned())
            .collect();
        c.ok(!reservoirs.is_empty(), || {
            format!("{url}: no node carries capacity_taf (the tile holds reservoirs)")
        });
        c.ok(
            reservoirs
                .iter()
                .all(|v| matches!(v, MvtValue::Double(d) if *d > 0.0)),
            || format!("{url}: capacity_taf values {reservoirs:?} are not all positive Doubles"),
        );
    }

    let pbf = url.replace(".mvt", ".pbf");
    let p = get(client, &pbf).await;
    if expect_head(c, &p, 200, "application/vnd.mapbox-vector-tile") {
        c.ok(p.body == r.body, || {
            format!(
                "{pbf}: {} bytes differ from the .mvt's {}",
                p.body.len(),
                r.body.len()
            )
        });
    }

    // Far from the data: no features, so 204 and nothing else.
    let far = format!("{base}/tiles/nodes,arcs,demand_units/10/0/0.mvt");
    let r = get(client, &far).await;
    c.ok(r.status == 204, || {
        format!("{far}: status {} (expected 204)", r.status)
    });
    c.ok(r.body.is_empty(), || {
        format!("{far}: {} body bytes (expected none)", r.body.len())
    });
    // The world tile is not empty: it holds every node (lines and areas under one tile unit,
    // about 10 km at zoom 0, are generalised away, by design).
    let world = format!("{base}/tiles/nodes,arcs,demand_units/0/0/0.mvt");
    let r = get(client, &world).await;
    if expect_head(c, &r, 200, "application/vnd.mapbox-vector-tile") {
        let nodes = std::panic::catch_unwind(|| common::decode(&r.body))
            .ok()
            .and_then(|d| d.get("nodes").map(Vec::len));
        c.ok(nodes == Some(1400), || {
            format!("{world}: {nodes:?} nodes (expected all 1400)")
        });
    }
    decoded
        .get("nodes")
        .map(|fs| fs.iter().filter_map(|f| f.id).collect())
        .unwrap_or_default()
}

async fn check_tile_geojson(
    c: &mut Checks,
    client: &reqwest::Client,
    base: &str,
    mvt_nodes: &HashSet<u64>,
) {
    let url = format!(
        "{base}/tiles/nodes,arcs/{}/{}/{}.geojson",
        TILE.z, TILE.x, TILE.y
    );
    let r = get(client, &url).await;
    if !expect_head(c, &r, 200, "application/geo+json") {
        return;
    }
    let Some(doc) = r.json(c) else { return };
    c.ok(doc["type"] == "FeatureCollection", || {
        format!("{url}: type {:?}", doc["type"])
    });
    let empty = Vec::new();
    let features = doc["features"].as_array().unwrap_or(&empty);
    c.ok(!features.is_empty(), || format!("{url}: no features"));
    let bounds = TILE.lonlat_bounds();
    let mut per_layer = std::collections::BTreeMap::<String, usize>::new();
    let mut outside = Vec::new();
    for f in features {
        let layer = f["layer"].as_str().unwrap_or_default().to_string();
        c.ok(layer == "nodes" || layer == "arcs", || {
            format!("{url}: feature {} has layer {:?}", f["id"], f["layer"])
        });
        c.ok(f["type"] == "Feature", || {
            format!("{url}: feature {} has type {:?}", f["id"], f["type"])
        });
        c.ok(f["id"].is_i64() && f["properties"]["id"] == f["id"], || {
            format!(
                "{url}: {layer} feature id {:?}, properties.id {:?}",
                f["id"], f["properties"]["id"]
            )
        });
        *per_layer.entry(layer.clone()).or_default() += 1;
        let mut pts = Vec::new();
        positions(&f["geometry"], &mut pts);
        c.ok(!pts.is_empty(), || {
            format!("{url}: {layer} feature {} has no coordinates", f["id"])
        });
        if let Some(p) = pts.iter().find(|p| !inside(&bounds, **p, EPS)) {
            outside.push(format!("{layer} {} at {p:?}", f["id"]));
        }
    }
    c.ok(outside.is_empty(), || {
        format!(
            "{url}: {} feature(s) reach outside the tile {bounds:?}: {}",
            outside.len(),
            outside
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join("; ")
        )
    });
    // Points are never generalised away: every node of the GeoJSON tile is in the MVT tile
    // (which holds a few more, from its buffer).
    let missing: Vec<&Value> = features
        .iter()
        .filter(|f| f["layer"] == "nodes")
        .map(|f| &f["id"])
        .filter(|id| !id.as_u64().is_some_and(|id| mvt_nodes.contains(&id)))
        .collect();
    c.ok(missing.is_empty(), || {
        format!("{url}: nodes {missing:?} are missing from the same tile as MVT")
    });
    c.ok(
        per_layer.get("nodes").copied().unwrap_or(0) > 0
            && per_layer.get("arcs").copied().unwrap_or(0) > 0,
        || format!("{url}: features per layer {per_layer:?}"),
    );
}

async fn check_tilejson(c: &mut Checks, client: &reqwest::Client, base: &str) {
    let url = format!("{base}/tiles/nodes,arcs,demand_units.json");
    let r = get(client, &url).await;
    if !expect_head(c, &r, 200, "application/json") {
        return;
    }
    let Some(tj) = r.json(c) else { return };
    c.ok(tj["tilejson"] == "3.0.0", || {
        format!("{url}: tilejson {:?}", tj["tilejson"])
    });
    let expected = format!("{base}/tiles/nodes,arcs,demand_units/{{z}}/{{x}}/{{y}}.mvt");
    c.ok(tj["tiles"][0] == expected.as_str(), || {
        format!(
            "{url}: tiles[0] {:?} (expected {expected:?})",
            tj["tiles"][0]
        )
    });
    // Links follow the Host the client used; a Host that is not a host name is not echoed.
    for (host, prefix) in [
        (
            "tiles.example.org:8080",
            "http://tiles.example.org:8080/tiles/",
        ),
        ("evil.example/<script>", "http://localhost/tiles/"),
    ] {
        let r = client
            .get(&url)
            .header(reqwest::header::HOST, host)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url} with Host {host}: {e}"));
        let status = r.status().as_u16();
        let doc: Value = r.json().await.unwrap_or(Value::Null);
        c.ok(
            status == 200
                && doc["tiles"][0]
                    .as_str()
                    .is_some_and(|t| t.starts_with(prefix)),
            || {
                format!(
                    "{url} with Host {host:?}: status {status}, tiles[0] {:?} (expected to start with {prefix})",
                    doc["tiles"][0]
                )
            },
        );
    }
    let empty = Vec::new();
    let vl = tj["vector_layers"].as_array().unwrap_or(&empty);
    let ids: Vec<&str> = vl.iter().filter_map(|l| l["id"].as_str()).collect();
    c.ok(ids == ["nodes", "arcs", "demand_units"], || {
        format!("{url}: vector_layers ids {ids:?}")
    });
    for l in vl {
        c.ok(
            l["fields"]
                .as_object()
                .is_some_and(|f| f.contains_key("id")),
            || format!("{url}: vector layer {} fields {:?}", l["id"], l["fields"]),
        );
    }
    if let Some(nodes) = vl.iter().find(|l| l["id"] == "nodes") {
        c.ok(nodes["fields"]["capacity_taf"] == "Number", || {
            format!(
                "{url}: nodes capacity_taf field {:?}",
                nodes["fields"]["capacity_taf"]
            )
        });
        c.ok(nodes["fields"]["short_code"] == "String", || {
            format!(
                "{url}: nodes short_code field {:?}",
                nodes["fields"]["short_code"]
            )
        });
    }
    let b: Vec<f64> = tj["bounds"]
        .as_array()
        .map(|a| a.iter().filter_map(num).collect())
        .unwrap_or_default();
    let close = b.len() == 4 && b.iter().zip(EXTENT).all(|(x, e)| (x - e).abs() <= 0.05);
    c.ok(close, || {
        format!(
            "{url}: bounds {:?} (expected about {EXTENT:?})",
            tj["bounds"]
        )
    });
    let center: Vec<f64> = tj["center"]
        .as_array()
        .map(|a| a.iter().filter_map(num).collect())
        .unwrap_or_default();
    c.ok(
        b.len() == 4
            && center.len() == 3
            && (b[0]..=b[2]).contains(&center[0])
            && (b[1]..=b[3]).contains(&center[1]),
        || {
            format!(
                "{url}: center {:?} not inside bounds {:?}",
                tj["center"], tj["bounds"]
            )
        },
    );
    let (minz, maxz) = (tj["minzoom"].as_u64(), tj["maxzoom"].as_u64());
    c.ok(
        matches!((minz, maxz), (Some(a), Some(b)) if a <= b && b <= 30),
        || {
            format!(
                "{url}: minzoom {:?} maxzoom {:?}",
                tj["minzoom"], tj["maxzoom"]
            )
        },
    );
}

async fn check_catalog(c: &mut Checks, client: &reqwest::Client, base: &str) {
    let url = format!("{base}/catalog");
    let r = get(client, &url).await;
    if !expect_head(c, &r, 200, "application/json") {
        return;
    }
    let Some(doc) = r.json(c) else { return };
    let empty = Vec::new();
    let layers = doc["layers"].as_array().unwrap_or(&empty);
    c.ok(layers.len() == 3, || {
        format!("{url}: {} layers (expected 3)", layers.len())
    });
    for (name, count, kind, field) in [
        ("nodes", 1400, "Point", "capacity_taf"),
        ("arcs", 1291, "LineString", "from_node"),
        ("demand_units", 257, "MultiPolygon", "acres"),
    ] {
        let Some(l) = layers.iter().find(|l| l["name"] == name) else {
            c.ok(false, || format!("{url}: no layer {name}"));
            continue;
        };
        c.ok(l["feature_count"] == count, || {
            format!(
                "{url}: {name} feature_count {:?} (expected {count})",
                l["feature_count"]
            )
        });
        c.ok(l["geometry_type"] == kind, || {
            format!(
                "{url}: {name} geometry_type {:?} (expected {kind})",
                l["geometry_type"]
            )
        });
        c.ok(
            l["fields"].get("id").is_some() && l["fields"].get(field).is_some(),
            || format!("{url}: {name} fields {:?} lack id or {field}", l["fields"]),
        );
        let b: Vec<f64> = l["bounds"]
            .as_array()
            .map(|a| a.iter().filter_map(num).collect())
            .unwrap_or_default();
        c.ok(
            b.len() == 4
                && b[0] <= b[2]
                && b[1] <= b[3]
                && b[0] >= EXTENT[0] - 0.05
                && b[1] >= EXTENT[1] - 0.05
                && b[2] <= EXTENT[2] + 0.05
                && b[3] <= EXTENT[3] + 0.05,
            || format!("{url}: {name} bounds {:?}", l["bounds"]),
        );
    }
}

/// One items page, checked for its common shape; returns the document.
async fn items_page(c: &mut Checks, client: &reqwest::Client, url: &str) -> Option<Value> {
    let r = get(client, url).await;
    if !expect_head(c, &r, 200, "application/geo+json") {
        return None;
    }
    let doc = r.json(c)?;
    c.ok(doc["type"] == "FeatureCollection", || {
        format!("{url}: type {:?}", doc["type"])
    });
    let n = doc["features"].as_array().map_or(0, Vec::len);
    c.ok(doc["numberReturned"].as_u64() == Some(n as u64), || {
        format!(
            "{url}: numberReturned {:?} but {n} features",
            doc["numberReturned"]
        )
    });
    c.ok(doc["numberMatched"].is_u64(), || {
        format!("{url}: numberMatched {:?}", doc["numberMatched"])
    });
    Some(doc)
}

fn link(doc: &Value, rel: &str) -> Option<String> {
    doc["links"]
        .as_array()?
        .iter()
        .find(|l| l["rel"] == rel)
        .and_then(|l| l["href"].as_str())
        .map(str::to_string)
}

/// Nodes of type STR in the real data, counted in the file (independently of the server).
fn str_nodes_in_file() -> u64 {
    let path = common::calsim3_dir().join("nodes.geojson");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let doc: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()));
    let n = features(&doc)
        .iter()
        .filter(|f| f["properties"]["type"] == "STR")
        .count() as u64;
    assert_eq!(n, 68, "STR nodes in {}", path.display());
    n
}

fn features(doc: &Value) -> &[Value] {
    doc["features"].as_array().map_or(&[], Vec::as_slice)
}

async fn check_items(c: &mut Checks, client: &reqwest::Client, base: &str) {
    let bbox = Bounds {
        minx: -122.5,
        miny: 37.5,
        maxx: -121.0,
        maxy: 39.0,
    };
    let rect = Rect::new((bbox.minx, bbox.miny), (bbox.maxx, bbox.maxy));

    // Paging by bbox: follow `next` until none remains.
    let first = format!("{base}/collections/nodes/items?bbox=-122.5,37.5,-121,39&limit=100");
    let Some(doc) = items_page(c, client, &first).await else {
        return;
    };
    let matched = doc["numberMatched"].as_u64().unwrap_or(0);
    let returned = doc["numberReturned"].as_u64().unwrap_or(0);
    c.ok(matched > 100, || {
        format!("{first}: numberMatched {matched}; the bbox holds more than 100 nodes")
    });
    c.ok(returned == matched.min(100), || {
        format!(
            "{first}: numberReturned {returned} (expected {})",
            matched.min(100)
        )
    });
    let mut seen: Vec<i64> = Vec::new();
    let mut page = Some((first.clone(), doc));
    let mut pages = 0;
    while let Some((url, doc)) = page.take() {
        pages += 1;
        c.ok(doc["numberMatched"].as_u64() == Some(matched), || {
            format!(
                "{url}: numberMatched {:?} changed from {matched}",
                doc["numberMatched"]
            )
        });
        for f in features(&doc) {
            let id = f["id"].as_i64();
            c.ok(id.is_some() && f["properties"]["id"] == f["id"], || {
                format!(
                    "{url}: feature id {:?}, properties.id {:?}",
                    f["id"], f["properties"]["id"]
                )
            });
            seen.extend(id);
            let hit = to_geo(&f["geometry"]).is_some_and(|g| g.intersects(&rect));
            c.ok(hit, || {
                format!(
                    "{url}: feature {} ({}) does not intersect the bbox: {}",
                    f["id"], f["properties"]["short_code"], f["geometry"]
                )
            });
        }
        if let Some(next) = link(&doc, "next") {
            c.ok(next.starts_with(base), || {
                format!("{url}: next link {next:?} is not on {base}")
            });
            if pages > 50 || !next.starts_with("http") {
                c.ok(false, || {
                    format!("{url}: paging does not end (next {next:?})")
                });
                break;
            }
            page = items_page(c, client, &next).await.map(|d| (next, d));
        }
    }
    let unique: HashSet<i64> = seen.iter().copied().collect();
    c.ok(seen.len() as u64 == matched, || {
        format!(
            "{first}: following next links gave {} features in {pages} page(s); numberMatched {matched}",
            seen.len()
        )
    });
    c.ok(unique.len() == seen.len(), || {
        format!(
            "{first}: {} duplicate ids across pages",
            seen.len() - unique.len()
        )
    });
    c.ok(seen.windows(2).all(|w| w[0] < w[1]), || {
        format!("{first}: pages are not in id order")
    });

    // Default page size.
    let url = format!("{base}/collections/nodes/items");
    if let Some(doc) = items_page(c, client, &url).await {
        c.ok(doc["numberReturned"] == 100, || {
            format!(
                "{url}: numberReturned {:?} (default limit is 100)",
                doc["numberReturned"]
            )
        });
        c.ok(doc["numberMatched"] == 1400, || {
            format!(
                "{url}: numberMatched {:?} (expected 1400)",
                doc["numberMatched"]
            )
        });
        c.ok(link(&doc, "next").is_some(), || {
            format!("{url}: no next link though 1300 nodes remain")
        });
    }

    // An offset past the end is an empty page, not an error.
    let url = format!("{base}/collections/nodes/items?offset=5000");
    if let Some(doc) = items_page(c, client, &url).await {
        c.ok(
            doc["numberReturned"] == 0 && doc["numberMatched"] == 1400,
            || {
                format!(
                    "{url}: numberReturned {:?}, numberMatched {:?} (expected 0 and 1400)",
                    doc["numberReturned"], doc["numberMatched"]
                )
            },
        );
        c.ok(link(&doc, "next").is_none(), || {
            format!("{url}: a next link past the end")
        });
    }

    // clip=true keeps arcs inside the bbox.
    let url =
        format!("{base}/collections/arcs/items?bbox=-122.5,37.5,-121,39&clip=true&limit=1000");
    if let Some(doc) = items_page(c, client, &url).await {
        let fs = features(&doc);
        c.ok(!fs.is_empty(), || format!("{url}: no arcs"));
        c.ok(
            doc["numberMatched"].as_u64() == Some(fs.len() as u64),
            || {
                format!(
                    "{url}: numberMatched {:?} but {} features with limit=1000",
                    doc["numberMatched"],
                    fs.len()
                )
            },
        );
        let mut outside = Vec::new();
        for f in fs {
            let mut pts = Vec::new();
            positions(&f["geometry"], &mut pts);
            if pts.is_empty() {
                outside.push(format!("{} has no coordinates", f["id"]));
            } else if let Some(p) = pts.iter().find(|p| !inside(&bbox, **p, EPS)) {
                outside.push(format!("{} at {p:?}", f["id"]));
            }
        }
        c.ok(outside.is_empty(), || {
            format!(
                "{url}: {} clipped arc(s) reach outside the bbox: {}",
                outside.len(),
                outside
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        });
    }
    // Without clip, the same arcs reach outside the bbox (else the clip check proves nothing).
    let url = format!("{base}/collections/arcs/items?bbox=-122.5,37.5,-121,39&limit=1000");
    if let Some(doc) = items_page(c, client, &url).await {
        let reaches_out = features(&doc).iter().any(|f| {
            let mut pts = Vec::new();
            positions(&f["geometry"], &mut pts);
            pts.iter().any(|p| !inside(&bbox, *p, EPS))
        });
        c.ok(reaches_out, || {
            format!("{url}: no unclipped arc crosses the bbox edge")
        });
    }

    // A property filter. The expected count comes from the file itself: 68 nodes have type
    // STR (the data README's "63 reservoir nodes" are those carrying reservoir fields, one of
    // which is not STR).
    let str_nodes = str_nodes_in_file();
    let url = format!("{base}/collections/nodes/items?node_type=STR&limit=1000");
    if let Some(doc) = items_page(c, client, &url).await {
        c.ok(doc["numberMatched"] == str_nodes, || {
            format!(
                "{url}: numberMatched {:?} (expected {str_nodes})",
                doc["numberMatched"]
            )
        });
        c.ok(doc["numberReturned"] == str_nodes, || {
            format!(
                "{url}: numberReturned {:?} (expected {str_nodes})",
                doc["numberReturned"]
            )
        });
        let wrong: Vec<&Value> = features(&doc)
            .iter()
            .filter(|f| f["properties"]["node_type"] != "STR")
            .map(|f| &f["id"])
            .collect();
        c.ok(wrong.is_empty(), || {
            format!("{url}: features {wrong:?} are not STR")
        });
        c.ok(link(&doc, "next").is_none(), || {
            format!("{url}: a next link though every match was returned")
        });
        let shasta = features(&doc)
            .iter()
            .find(|f| f["properties"]["short_code"] == "SHSTA");
        c.ok(
            shasta.is_some_and(|f| f["properties"]["capacity_taf"].as_f64() == Some(4552.0)),
            || format!("{url}: SHSTA with capacity_taf 4552 not found: {shasta:?}"),
        );
    }
}

/// OGC API - Features Part 1 Core documents: landing page, conformance, collections, one
/// collection, one item, `prev` links, and filters by the data's own key (`type`).
async fn check_ogc(c: &mut Checks, client: &reqwest::Client, base: &str) {
    let r = get(client, &format!("{base}/?f=json")).await;
    if expect_head(c, &r, 200, "application/json") {
        let doc = r.json(c).unwrap_or_default();
        for rel in ["self", "conformance", "data", "service-desc"] {
            c.ok(link(&doc, rel).is_some(), || {
                format!("{}: no {rel} link in {doc}", r.url)
            });
        }
    }
    let r = get(client, &format!("{base}/conformance")).await;
    if expect_head(c, &r, 200, "application/json") {
        let doc = r.json(c).unwrap_or_default();
        let classes: Vec<&str> = doc["conformsTo"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for class in ["core", "geojson"] {
            let uri = format!("http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/{class}");
            c.ok(classes.contains(&uri.as_str()), || {
                format!("{}: {uri} missing from {classes:?}", r.url)
            });
        }
    }
    let r = get(client, &format!("{base}/collections")).await;
    if expect_head(c, &r, 200, "application/json") {
        let doc = r.json(c).unwrap_or_default();
        let ids: Vec<&str> = doc["collections"]
            .as_array()
            .map(|a| a.iter().filter_map(|c| c["id"].as_str()).collect())
            .unwrap_or_default();
        c.ok(ids == ["nodes", "arcs", "demand_units"], || {
            format!("{}: collections {ids:?}", r.url)
        });
    }
    let r = get(client, &format!("{base}/collections/nodes")).await;
    if expect_head(c, &r, 200, "application/json") {
        let doc = r.json(c).unwrap_or_default();
        let bbox: Vec<f64> = doc["extent"]["spatial"]["bbox"][0]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default();
        c.ok(
            bbox.len() == 4 && bbox[0] > -125.0 && bbox[2] < -114.0 && bbox[0] < bbox[2],
            || format!("{}: spatial extent {bbox:?}", r.url),
        );
        c.ok(link(&doc, "items").is_some(), || {
            format!("{}: no items link", r.url)
        });
    }
    // SHSTA is feature 81 of the real data.
    let r = get(client, &format!("{base}/collections/nodes/items/81")).await;
    if expect_head(c, &r, 200, "application/geo+json") {
        let doc = r.json(c).unwrap_or_default();
        c.ok(
            doc["type"] == "Feature" && doc["properties"]["short_code"] == "SHSTA",
            || format!("{}: {doc}", r.url),
        );
        for rel in ["self", "collection"] {
            c.ok(link(&doc, rel).is_some(), || {
                format!("{}: no {rel} link", r.url)
            });
        }
    }
    let r = get(client, &format!("{base}/collections/nodes/items/99999999")).await;
    expect_problem(c, &r, 404);
    // A comma list names layers for tiles, never a collection.
    let r = get(client, &format!("{base}/collections/nodes,arcs/items")).await;
    expect_problem(c, &r, 404);

    // `prev` goes back: the second page's prev link gives the first page again.
    let first = format!("{base}/collections/nodes/items?limit=100");
    let second = format!("{base}/collections/nodes/items?limit=100&offset=100");
    if let (Some(a), Some(b)) = (
        items_page(c, client, &first).await,
        items_page(c, client, &second).await,
    ) {
        c.ok(link(&a, "prev").is_none(), || {
            format!("{first}: a prev link on the first page")
        });
        match link(&b, "prev") {
            Some(prev) => {
                if let Some(back) = items_page(c, client, &prev).await {
                    let ids = |d: &Value| -> Vec<Value> {
                        features(d).iter().map(|f| f["id"].clone()).collect()
                    };
                    c.ok(ids(&back) == ids(&a), || {
                        format!("{prev}: not the first page again")
                    });
                }
            }
            None => {
                c.ok(false, || format!("{second}: no prev link"));
            }
        }
    }
    // The data's own key works as a filter too: `type=STR` is `node_type=STR`.
    let by_key = format!("{base}/collections/nodes/items?type=STR&limit=1");
    if let Some(doc) = items_page(c, client, &by_key).await {
        let expected = str_nodes_in_file();
        c.ok(doc["numberMatched"] == expected, || {
            format!(
                "{by_key}: numberMatched {} (expected {expected})",
                doc["numberMatched"]
            )
        });
    }
}

async fn check_health(c: &mut Checks, client: &reqwest::Client, base: &str) {
    let url = format!("{base}/health");
    let r = get(client, &url).await;
    if expect_head(c, &r, 200, "application/json")
        && let Some(doc) = r.json(c)
    {
        c.ok(doc["status"] == "ok", || {
            format!("{url}: status {:?}", doc["status"])
        });
    }
    let url = format!("{base}/ready");
    let r = get(client, &url).await;
    c.ok(r.status == 200, || {
        format!("{url}: status {} body {:?}", r.status, r.text())
    });
}

async fn check_bad_input(c: &mut Checks, client: &reqwest::Client, base: &str) {
    let items = "/collections/nodes/items";
    let cases: &[(&str, u16)] = &[
        ("/tiles/nodes/23/0/0.mvt", 400),
        ("/tiles/nodes/99999999999/0/0.mvt", 400),
        ("/tiles/nodes/2/4/0.mvt", 400),
        ("/tiles/nodes/2/0/4.mvt", 400),
        ("/tiles/nodes/1/99999999999999999999/0.mvt", 400),
        ("/tiles/nodes/a/0/0.mvt", 400),
        ("/tiles/nodes/1/0/x.mvt", 400),
        ("/tiles/nodes/1/-1/0.mvt", 400),
        ("/tiles/nodes/-1/0/0.mvt", 400),
        ("/tiles/nodes/1/0/0", 400),
        ("/tiles/nodes/1/0/0.png", 400),
        ("/tiles/nodes/1/0/0.geojson.png", 400),
        ("/tiles/nope/1/0/0.mvt", 404),
        ("/tiles/nope.json", 404),
        ("/collections/nope/items", 404),
        ("/tiles/nodes,nodes/1/0/0.mvt", 400),
        ("/tiles/nodes,nodes.json", 400),
        ("/collections/nodes/items?bbox=1,2,3", 400),
        ("/collections/nodes/items?bbox=a,b,c,d", 400),
        ("/collections/nodes/items?bbox=-121,37,-122,39", 400),
        ("/collections/nodes/items?bbox=-122,39,-121,37", 400),
        ("/collections/nodes/items?bbox=-122,37,200,39", 400),
        ("/collections/nodes/items?bbox=-122,-95,-121,39", 400),
        ("/collections/nodes/items?bbox=-180,-90,180,90", 400),
        ("/collections/nodes/items?bbox=NaN,37,-121,39", 400),
        ("/collections/nodes/items?limit=0", 400),
        ("/collections/nodes/items?limit=10001", 400),
        ("/collections/nodes/items?limit=abc", 400),
        ("/collections/nodes/items?limit=-5", 400),
        ("/collections/nodes/items?offset=-1", 400),
        ("/collections/nodes/items?offset=abc", 400),
        ("/collections/nodes/items?clip=maybe", 400),
        ("/collections/nodes/items?foo=1", 400),
        ("/nope", 404),
        ("/tiles", 404),
    ];
    for (path, status) in cases {
        let url = format!("{base}{path}");
        let r = get(client, &url).await;
        c.ok(r.status != 500, || {
            format!("{url}: 500 (a client mistake must never be a server error)")
        });
        expect_problem(c, &r, *status);
    }
    // The same parameters are accepted when well formed (so the refusals above are about the
    // values, not the names).
    for ok in [
        "?bbox=-122.5,37.5,-121,39&limit=10000&offset=0&clip=false",
        "?limit=1&offset=1399",
    ] {
        let url = format!("{base}{items}{ok}");
        let r = get(client, &url).await;
        c.ok(r.status == 200, || {
            format!("{url}: status {} body {:?}", r.status, r.text())
        });
    }
}

/// A problem+json answer with `title`, a `status` equal to the HTTP status, and a `detail`.
fn expect_problem(c: &mut Checks, r: &Reply, status: u16) {
    let url = &r.url;
    if !expect_head(c, r, status, "application/problem+json") {
        return;
    }
    let Some(doc) = r.json(c) else { return };
    c.ok(doc["title"].as_str().is_some_and(|t| !t.is_empty()), || {
        format!("{url}: problem title {:?}", doc["title"])
    });
    c.ok(doc["status"] == status, || {
        format!("{url}: problem status {:?} (HTTP {status})", doc["status"])
    });
    c.ok(
        doc["detail"].as_str().is_some_and(|d| !d.is_empty()),
        || format!("{url}: problem detail {:?}", doc["detail"]),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_routes_memory_source() {
    let source = common::memory_source(&common::calsim3_dir());
    let base = common::start_server(source, Config::default()).await;
    check_routes(&base).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_routes_postgis_source() {
    let (_url, pool) = common::postgis_with(&common::calsim3_dir(), "http").await;
    let base = common::start_server(common::postgis_source(pool), Config::default()).await;
    check_routes(&base).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_embedded_sample_tile_has_three_layers() {
    let config = Config::default();
    let sample = MemorySource::sample(&config.layers).expect("the embedded sample loads");
    let base = common::start_server(Arc::new(sample), config).await;
    let client = reqwest::Client::new();
    let mut c = Checks::default();
    let url = format!(
        "{base}/tiles/nodes,arcs,demand_units/{}/{}/{}.mvt",
        TILE.z, TILE.x, TILE.y
    );
    let r = get(&client, &url).await;
    if expect_head(&mut c, &r, 200, "application/vnd.mapbox-vector-tile") {
        let decoded = common::decode(&r.body);
        let names: Vec<&str> = decoded.keys().map(String::as_str).collect();
        let expected = BTreeSet::from(["nodes", "arcs", "demand_units"]);
        c.ok(
            names.len() == 3 && names.iter().copied().collect::<BTreeSet<_>>() == expected,
            || format!("{url}: layers {names:?} (expected exactly nodes, arcs, demand_units)"),
        );
        // README of the sample: 34 nodes, 47 arcs and 4 demand units lie in this tile (the
        // tile's buffer may add a few more).
        for (layer, at_least) in [("nodes", 34), ("arcs", 47), ("demand_units", 4)] {
            let n = decoded.get(layer).map_or(0, Vec::len);
            c.ok(n >= at_least, || {
                format!("{url}: {layer} has {n} features (expected at least {at_least})")
            });
        }
    }
    let url = format!(
        "{base}/tiles/demand_units/{}/{}/{}.geojson",
        TILE.z, TILE.x, TILE.y
    );
    let r = get(&client, &url).await;
    if expect_head(&mut c, &r, 200, "application/geo+json")
        && let Some(doc) = r.json(&mut c)
    {
        let names: BTreeSet<&str> = features(&doc)
            .iter()
            .filter_map(|f| f["properties"]["name"].as_str())
            .collect();
        c.ok(names.len() == 4, || {
            format!("{url}: demand units {names:?} (README: Sacramento, West Sacramento, Stone Lakes NWR, Stockton)")
        });
    }
    c.finish("embedded sample");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_pages_carry_security_headers_and_errors_no_internals() {
    let config = Config::default();
    let sample = MemorySource::sample(&config.layers).expect("the embedded sample loads");
    let base = common::start_server(Arc::new(sample), config).await;
    let client = reqwest::Client::new();
    for page in ["/", "/docs"] {
        let r = client
            .get(format!("{base}{page}"))
            .header("Accept", "text/html")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{page}");
        let h = r.headers();
        let csp = h
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("{page}: no Content-Security-Policy"));
        for directive in [
            "default-src 'self'",
            "worker-src 'self' blob:",
            "frame-ancestors 'none'",
        ] {
            assert!(
                csp.contains(directive),
                "{page}: CSP {csp:?} lacks {directive:?}"
            );
        }
        assert_eq!(h["x-content-type-options"], "nosniff", "{page}");
        assert_eq!(h["x-frame-options"], "DENY", "{page}");
        assert!(h.contains_key("referrer-policy"), "{page}");
    }
    let r = client
        .get(format!("{base}/web/viewer.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    // A 500 says only that the server failed; what failed goes to the log.
    let body = coeqwal_network_api::error::AppError::Internal(
        "connection to postgres://u:secret@db failed at src/x.rs:1".into(),
    )
    .into_response();
    assert_eq!(body.status(), 500);
    let bytes = axum::body::to_bytes(body.into_body(), 1 << 16)
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        !text.contains("secret") && !text.contains("src/x.rs"),
        "{text}"
    );
}
