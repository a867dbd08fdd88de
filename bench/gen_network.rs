//! A deterministic generator of large river-like networks for tests and benchmarks.
//!
//! From one root (a reservoir), arcs branch outwards the way canals and rivers split into
//! distributaries and diversions, so a downstream walk from the root reaches every node; every
//! 50th node also returns water to a node a little upstream (arc type `RT`), which makes cycles.
//! The same `(nodes, seed)` always gives the same network.
#![allow(dead_code)]

use coeqwal_network_api::source::NetworkRow;
use serde_json::{Map, Value, json};

/// A small linear congruential generator: deterministic, no dependency.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

fn props(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

/// `nodes` nodes and about `1.02 * nodes` arcs; node 0 (`N0`) is the root.
pub fn generate(nodes: usize, seed: u64) -> (Vec<NetworkRow>, Vec<NetworkRow>) {
    let mut rng = Lcg(seed);
    let mut pos = Vec::with_capacity(nodes);
    let mut node_rows = Vec::with_capacity(nodes);
    let mut arc_rows = Vec::with_capacity(nodes + nodes / 50);
    for i in 0..nodes {
        let parent = if i == 0 {
            None
        } else {
            let back = 1 + (rng.next() as usize % i.min(20));
            Some(i - back)
        };
        let (lon, lat) = match parent {
            None => (-122.4, 40.7),
            Some(p) => {
                let (plon, plat): (f64, f64) = pos[p];
                let dx = (rng.next() % 1000) as f64 / 1e5 - 0.004;
                let dy = -((rng.next() % 1000) as f64) / 1e5;
                (plon + dx, (plat + dy).max(32.0))
            }
        };
        pos.push((lon, lat));
        let reservoir = i % 1000 == 0;
        node_rows.push(NetworkRow {
            id: i as i64 + 1,
            geometry: json!({"type": "Point", "coordinates": [lon, lat]}),
            properties: props(json!({
                "id": i as i64 + 1,
                "short_code": format!("N{i}"),
                "name": format!("Node {i}"),
                "node_type": if reservoir { "STR" } else { "CH" },
                "capacity_taf": if reservoir { Some(100.0) } else { None },
            })),
        });
        let mut arc = |from: usize, to: usize, kind: &str, rng: &mut Lcg| {
            let id = arc_rows.len() as i64 + 1;
            let (a, b) = (pos[from], pos[to]);
            arc_rows.push(NetworkRow {
                id,
                geometry: json!({"type": "LineString", "coordinates": [[a.0, a.1], [b.0, b.1]]}),
                properties: props(json!({
                    "id": id,
                    "short_code": format!("A{id}"),
                    "arc_type": kind,
                    "from_node": format!("N{from}"),
                    "to_node": format!("N{to}"),
                    "length_m": 100.0 + (rng.next() % 5000) as f64,
                })),
            });
        };
        if let Some(p) = parent {
            let kind = if rng.next() % 5 == 0 { "D" } else { "CH" };
            arc(p, i, kind, &mut rng);
        }
        if i >= 100 && i % 50 == 0 {
            let back = 1 + (rng.next() as usize % 100);
            arc(i, i - back, "RT", &mut rng);
        }
    }
    (node_rows, arc_rows)
}
