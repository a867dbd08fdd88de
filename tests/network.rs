//! Network analysis and the original `/api` routes, on the real CalSim3 data, on both sources.
//!
//! Plain-function tests of the graph run on the memory source's rows; route tests start the real
//! server on a free port for each source and check JSON shapes field by field.

mod common;

#[path = "../bench/gen_network.rs"]
mod gen_network;

use coeqwal_network_api::config::Config;
use coeqwal_network_api::network::graph::{Direction, Graph};
use coeqwal_network_api::source::Source;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};

async fn calsim_graph() -> Graph {
    let source = common::memory_source(&common::calsim3_dir());
    let config = Config::default();
    let nodes = source.rows(config.layer("nodes").unwrap()).await.unwrap();
    let arcs = source.rows(config.layer("arcs").unwrap()).await.unwrap();
    Graph::build(nodes, arcs)
}

fn codes(g: &Graph, visits: &[coeqwal_network_api::network::graph::Visit]) -> HashMap<String, u32> {
    visits
        .iter()
        .map(|v| (g.nodes[v.node as usize].code.clone(), v.depth))
        .collect()
}

#[tokio::test]
async fn graph_facts_of_the_real_network() {
    let g = calsim_graph().await;
    assert_eq!(g.nodes.len(), 1400);
    assert_eq!(g.arcs.len(), 1291);
    let shasta = g.node_by_code("SHSTA").unwrap();
    let down = g.traverse(shasta, Direction::Downstream, None, None);
    let seen = codes(&g, &down.visits);
    assert_eq!(
        down.visits.len(),
        48,
        "SHSTA reaches 48 nodes, itself included"
    );
    assert_eq!(seen.len(), 48, "each node once");
    assert_eq!(seen["SHSTA"], 0);
    assert_eq!(seen["SAC301"], 1);
    assert_eq!(seen["WTPJMS"], 1);
    // max_depth=1: only the direct neighbours.
    let near = g.traverse(shasta, Direction::Downstream, Some(1), None);
    let near: HashSet<String> = codes(&g, &near.visits).into_keys().collect();
    assert_eq!(near, ["SHSTA", "SAC301", "WTPJMS"].map(String::from).into());
    // KSWCK drains to SAC299.
    let keswick = g.node_by_code("KSWCK").unwrap();
    let to: Vec<&str> = g
        .leaving(keswick)
        .map(|a| g.nodes[g.arcs[a as usize].to as usize].code.as_str())
        .collect();
    assert_eq!(to, vec!["SAC299"]);
    // Every traversal ends, cycles included, and visits each node at most once.
    for n in 0..g.nodes.len() as u32 {
        for dir in [Direction::Upstream, Direction::Downstream] {
            let r = g.traverse(n, dir, None, None);
            let unique: HashSet<u32> = r.visits.iter().map(|v| v.node).collect();
            assert_eq!(unique.len(), r.visits.len());
        }
    }
    // Components: 33 parts with arcs, the largest 1,024 nodes (data README).
    let mut sizes: HashMap<u32, usize> = HashMap::new();
    for n in 0..g.nodes.len() as u32 {
        if g.leaving(n).count() + g.entering(n).count() > 0 {
            *sizes.entry(g.summary(n).component).or_default() += 1;
        }
    }
    assert_eq!(sizes.len(), 33);
    assert_eq!(sizes.values().max(), Some(&1024));
}

#[tokio::test]
async fn paths_follow_the_flow() {
    let g = calsim_graph().await;
    let (shasta, far) = (
        g.node_by_code("SHSTA").unwrap(),
        g.node_by_code("SAC240").unwrap(),
    );
    for path in [g.path_hops(shasta, far), g.path_length(shasta, far)] {
        let path = path.expect("SHSTA reaches SAC240 down the Sacramento");
        assert_eq!(path.nodes.first(), Some(&shasta));
        assert_eq!(path.nodes.last(), Some(&far));
        for (i, a) in path.arcs.iter().enumerate() {
            let arc = &g.arcs[*a as usize];
            assert_eq!((arc.from, arc.to), (path.nodes[i], path.nodes[i + 1]));
        }
    }
    assert!(
        g.path_hops(far, shasta).is_none(),
        "no path against the flow"
    );
    let hops = g.path_hops(shasta, far).unwrap();
    let length = g.path_length(shasta, far).unwrap();
    assert!(length.length_m <= hops.length_m + 1e-6);
}

#[tokio::test]
async fn a_generated_network_of_100k_nodes_is_walked_whole() {
    let (nodes, arcs) = gen_network::generate(100_000, 42);
    let again = gen_network::generate(100_000, 42);
    assert_eq!(arcs.len(), again.1.len(), "the generator is deterministic");
    assert_eq!(arcs[500].properties, again.1[500].properties);
    let g = Graph::build(nodes, arcs);
    assert_eq!(g.nodes.len(), 100_000);
    assert!(g.dangling.is_empty());
    let root = g.node_by_code("N0").unwrap();
    let down = g.traverse(root, Direction::Downstream, None, None);
    assert_eq!(down.visits.len(), 100_000, "the root reaches every node");
    let leaf = g.node_by_code("N99999").unwrap();
    let up = g.traverse(leaf, Direction::Upstream, None, None);
    assert!(up.visits.iter().any(|v| v.node == root));
    assert!(g.path_length(root, leaf).is_some());
}

async fn get(base: &str, path: &str) -> (u16, Value) {
    let r = reqwest::get(format!("{base}{path}")).await.unwrap();
    let status = r.status().as_u16();
    let body = r.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

fn assert_keys(v: &Value, keys: &[&str], what: &str) {
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("{what}: not an object: {v}"));
    for k in keys {
        assert!(obj.contains_key(*k), "{what}: missing field {k}: {v}");
    }
}

fn is_int(v: &Value) -> bool {
    v.as_i64().is_some()
}

fn is_str_or_null(v: &Value) -> bool {
    v.is_string() || v.is_null()
}

/// Every check of the network and original routes, against one running server.
async fn check_routes(base: &str) {
    // /network/nodes/{code}/downstream
    let (s, b) = get(base, "/network/nodes/SHSTA/downstream").await;
    assert_eq!(s, 200);
    assert_eq!(b["node_count"], 48);
    let nodes = b["nodes"].as_array().unwrap();
    let depth_of = |code: &str| {
        nodes
            .iter()
            .find(|n| n["short_code"] == code)
            .map(|n| n["depth"].clone())
    };
    assert_eq!(depth_of("SAC301"), Some(json!(1)));
    assert_eq!(depth_of("WTPJMS"), Some(json!(1)));
    let (_, one) = get(base, "/network/nodes/SHSTA/downstream?max_depth=1").await;
    assert_eq!(one["node_count"], 3);
    let (_, ch) = get(base, "/network/nodes/SHSTA/downstream?arc_types=CH").await;
    assert!(ch["node_count"].as_u64().unwrap() < 48);
    assert!(
        ch["arcs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["arc_type"] == "CH")
    );
    let (s, fc) = get(base, "/network/nodes/SHSTA/downstream?f=geojson").await;
    assert_eq!(s, 200);
    assert_eq!(fc["type"], "FeatureCollection");
    assert!(
        fc["features"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["properties"]["kind"] == "node")
            .all(|f| f["properties"]["depth"].is_u64())
    );
    let (_, up) = get(base, "/network/nodes/SAC299/upstream").await;
    let ups: HashSet<&str> = up["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["short_code"].as_str())
        .collect();
    assert!(ups.contains("KSWCK") && ups.contains("SHSTA"));
    // summary
    let (s, sum) = get(base, "/network/nodes/SHSTA").await;
    assert_eq!(s, 200);
    assert_eq!(sum["downstream_count"], 47);
    assert_eq!(sum["out_degree"], 2);
    assert_keys(
        &sum,
        &[
            "node",
            "in_degree",
            "out_degree",
            "upstream_count",
            "downstream_count",
            "upstream_reservoirs",
            "downstream_reservoirs",
            "component",
        ],
        "summary",
    );
    assert!(
        sum["downstream_reservoirs"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["short_code"] == "KSWCK")
    );
    assert!(sum["component"]["size"].as_u64().unwrap() >= 48);
    // path
    let (s, p) = get(base, "/network/path?from=SHSTA&to=SAC240").await;
    assert_eq!((s, &p["found"]), (200, &json!(true)));
    let (_, p2) = get(base, "/network/path?from=SHSTA&to=SAC240&weight=length").await;
    assert!(p2["length_m"].as_f64().unwrap() > 0.0);
    let (s, none) = get(base, "/network/path?from=SAC240&to=SHSTA").await;
    assert_eq!((s, &none["found"]), (200, &json!(false)));
    let (s, arc) = get(base, "/network/arcs/C_KSWCK").await;
    assert_eq!(s, 200);
    assert_eq!(arc["to"]["short_code"], "SAC299");

    // /api/health
    let (s, h) = get(base, "/api/health").await;
    assert_eq!(s, 200);
    assert_keys(&h, &["status", "timestamp", "database"], "/api/health");
    // /api/nodes, /api/arcs
    let (_, list) = get(base, "/api/nodes?limit=5").await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 5);
    assert_eq!(list[0]["id"], 1);
    assert_eq!(list[0]["short_code"], "EMD001");
    for n in list {
        assert_keys(
            n,
            &[
                "id",
                "short_code",
                "calsim_id",
                "name",
                "description",
                "node_type",
                "latitude",
                "longitude",
                "hydrologic_region",
                "geojson",
                "attributes",
            ],
            "/api/nodes element",
        );
        assert!(is_int(&n["id"]) && n["latitude"].is_f64() && n["longitude"].is_f64());
        assert!(is_str_or_null(&n["name"]) && n["geojson"]["type"] == "Point");
        assert!(n["attributes"].is_object());
    }
    let (_, all) = get(base, "/api/nodes?limit=10000").await;
    assert_eq!(all.as_array().unwrap().len(), 1400);
    let (_, sac) = get(base, "/api/nodes?region=SAC&limit=10000").await;
    assert!(
        sac.as_array()
            .unwrap()
            .iter()
            .all(|n| n["hydrologic_region"] == "SAC")
    );
    let (_, arcs) = get(base, "/api/arcs?limit=3").await;
    for a in arcs.as_array().unwrap() {
        assert_keys(
            a,
            &[
                "id",
                "short_code",
                "calsim_id",
                "name",
                "description",
                "arc_type",
                "from_node",
                "to_node",
                "shape_length",
                "hydrologic_region",
                "geojson",
                "attributes",
            ],
            "/api/arcs element",
        );
        assert!(a["shape_length"].is_f64() && a["geojson"]["type"] == "LineString");
    }
    // spatial: zoom thins the nodes
    let (s, sp) = get(
        base,
        "/api/nodes/spatial?bbox=-122.5,37.5,-121,39&limit=1000&zoom=12",
    )
    .await;
    assert_eq!(s, 200);
    assert_keys(
        &sp,
        &["nodes", "total", "bbox", "zoom", "truncated"],
        "spatial",
    );
    let (_, low) = get(base, "/api/nodes/spatial?bbox=-122.5,37.5,-121,39&zoom=5").await;
    assert!(low["total"].as_u64().unwrap() < sp["total"].as_u64().unwrap());
    assert!(
        low["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["node_type"] == "STR")
    );
    let (_, small) = get(base, "/api/nodes/spatial?bbox=-122.5,37.5,-121,39&limit=3").await;
    assert_eq!(small["truncated"], true);
    assert_eq!(small["nodes"].as_array().unwrap().len(), 3);
    // optimized
    let (_, opt) = get(base, "/api/nodes/optimized?limit=500").await;
    let opt = opt.as_array().unwrap();
    assert_eq!(opt.len(), 500);
    assert_eq!(
        opt[0].as_object().unwrap().keys().collect::<HashSet<_>>(),
        [
            "id",
            "short_code",
            "name",
            "node_type",
            "longitude",
            "latitude"
        ]
        .iter()
        .map(|k| k.to_string())
        .collect::<HashSet<_>>()
        .iter()
        .collect()
    );
    // search
    let (s, found) = get(base, "/api/search?q=shsta").await;
    assert_eq!(s, 200);
    assert_eq!(found["results"][0]["short_code"], "SHSTA");
    assert_eq!(found["results"][0]["type"], "node");
    assert_keys(
        &found["results"][0],
        &["type", "id", "short_code", "name", "description"],
        "search result",
    );
    // Names people know are found too: "Shasta Dam" is in SHSTA's description.
    let (_, by_name) = get(base, "/api/search?q=shasta%20dam&limit=100").await;
    assert!(
        by_name["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["short_code"] == "SHSTA"),
        "{by_name}"
    );
    let (_, arcs_found) = get(base, "/api/search?q=C_KSW&limit=100").await;
    assert!(
        arcs_found["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["type"] == "arc" && r["short_code"] == "C_KSWCK")
    );
    assert!(arcs_found["total"].as_u64().unwrap() >= 1);
    // analyses
    let (s, an) = get(base, "/api/nodes/81/analysis").await;
    assert_eq!(s, 200);
    assert_eq!(
        (an["origin_id"].clone(), an["origin_type"].clone()),
        (json!(81), json!("node"))
    );
    for e in an["downstream_nodes"].as_array().unwrap() {
        assert_keys(
            e,
            &[
                "id",
                "short_code",
                "name",
                "element_type",
                "distance",
                "direction",
            ],
            "analysis element",
        );
        assert!(e["distance"].as_u64().unwrap() <= 3);
        assert_eq!(e["direction"], "downstream");
    }
    assert_eq!(an["connected_arcs"].as_array().unwrap().len(), 2);
    let (_, same) = get(base, "/api/network/analysis/node/81").await;
    assert_eq!(same, an);
    let (s, arc_an) = get(base, "/api/arcs/1/analysis").await;
    assert_eq!(s, 200);
    assert_eq!(arc_an["origin_type"], "arc");
    assert_eq!(arc_an["connected_arcs"].as_array().unwrap().len(), 2);
    // network: both = union of upstream and downstream, each node once
    let (s, both) = get(base, "/api/nodes/81/network?direction=both").await;
    assert_eq!(s, 200);
    assert_keys(
        &both,
        &["source_node_id", "direction", "max_depth", "nodes", "arcs"],
        "network",
    );
    let ids = |v: &Value| -> Vec<i64> {
        v["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["id"].as_i64().unwrap())
            .collect()
    };
    let (_, upn) = get(base, "/api/nodes/81/network?direction=upstream").await;
    let (_, downn) = get(base, "/api/nodes/81/network?direction=downstream").await;
    let both_ids = ids(&both);
    let union: HashSet<i64> = ids(&upn).into_iter().chain(ids(&downn)).collect();
    assert_eq!(both_ids.len(), union.len(), "each node once");
    assert_eq!(both_ids.into_iter().collect::<HashSet<_>>(), union);
    let visited: HashSet<i64> = union;
    for a in both["arcs"].as_array().unwrap() {
        assert_keys(
            a,
            &[
                "id",
                "short_code",
                "name",
                "from_node_id",
                "to_node_id",
                "from_node_code",
                "to_node_code",
                "geometry",
                "arc_type",
            ],
            "network arc",
        );
        assert!(visited.contains(&a["from_node_id"].as_i64().unwrap()));
        assert!(visited.contains(&a["to_node_id"].as_i64().unwrap()));
    }
    let (_, sac_both) = get(base, "/api/nodes/374/network?direction=both&max_depth=100").await;
    let sac_ids = ids(&sac_both);
    assert_eq!(
        sac_ids.len(),
        sac_ids.iter().collect::<HashSet<_>>().len(),
        "SAC299: each node once"
    );
    // workshop
    let (s, ws) = get(base, "/api/workshop/status").await;
    assert_eq!(s, 200);
    assert_eq!(ws["graph"]["nodes"], 1400);
    assert_eq!(ws["graph"]["arcs"], 1291);
    assert_eq!(ws["status"], "ready");

    // errors: 404 and 400 problem+json that name the parameter
    for (path, status, word) in [
        ("/network/nodes/NOPE", 404, "NOPE"),
        ("/network/nodes/NOPE/downstream", 404, "NOPE"),
        ("/network/arcs/NOPE", 404, "NOPE"),
        ("/api/nodes/999999/analysis", 404, "999999"),
        ("/api/nodes/abc/network", 404, "abc"),
        ("/api/arcs/999999/analysis", 404, "999999"),
        (
            "/network/nodes/SHSTA/downstream?max_depth=0",
            400,
            "max_depth",
        ),
        (
            "/network/nodes/SHSTA/downstream?max_depth=abc",
            400,
            "max_depth",
        ),
        ("/api/nodes/81/analysis?max_depth=11", 400, "max_depth"),
        ("/api/nodes/81/network?max_depth=101", 400, "max_depth"),
        ("/api/nodes/81/network?direction=sideways", 400, "direction"),
        ("/api/search?q=a", 400, "q"),
        ("/api/search?q=ab&limit=101", 400, "limit"),
        ("/api/nodes?limit=10001", 400, "limit"),
        ("/api/nodes/optimized?limit=0", 400, "limit"),
        ("/api/nodes/spatial", 400, "bbox"),
        ("/network/path?from=SHSTA", 400, "to"),
        (
            "/network/path?from=SHSTA&to=SAC240&weight=fast",
            400,
            "weight",
        ),
    ] {
        let r = reqwest::get(format!("{base}{path}")).await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{path}");
        assert_eq!(
            r.headers()["content-type"],
            "application/problem+json",
            "{path}"
        );
        let body: Value = r.json().await.unwrap();
        assert!(
            body["detail"].as_str().unwrap().contains(word),
            "{path}: {body}"
        );
    }

    // batch: each item as the single route answers it, one bad among good ones
    let items = json!([
        {"path": "/network/nodes/SHSTA/downstream?max_depth=3"},
        {"path": "/network/nodes/NOPE"},
        {"path": "/api/nodes/81/analysis"},
        {"path": "/api/search?q=a"},
    ]);
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{base}/api/batch"))
        .json(&items)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let answers: Vec<Value> = r.json().await.unwrap();
    assert_eq!(answers.len(), 4);
    let single = get(base, "/network/nodes/SHSTA/downstream?max_depth=3").await;
    assert_eq!(
        (
            answers[0]["status"].as_u64().unwrap() as u16,
            answers[0]["body"].clone()
        ),
        single
    );
    assert_eq!(answers[1]["status"], 404);
    assert_eq!(answers[2]["body"], an);
    assert_eq!(answers[3]["status"], 400);
    for (body, word, status) in [
        (json!([{"path": "/nope"}]).to_string(), "GET route", 400),
        (
            json!([{"path": "/api/batch"}]).to_string(),
            "GET route",
            400,
        ),
        (
            json!([{"path": "http://elsewhere/x"}]).to_string(),
            "path",
            400,
        ),
        (
            serde_json::to_string(&vec![json!({"path": "/health"}); 51]).unwrap(),
            "50",
            400,
        ),
        // Over 64 KiB: too large (413), as the OpenAPI document says.
        (
            format!("[{{\"path\": \"/health?{}\"}}]", "x".repeat(70_000)),
            "bytes",
            413,
        ),
        ("not json".to_string(), "JSON", 400),
    ] {
        let r = client
            .post(format!("{base}/api/batch"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{word}");
        let b: Value = r.json().await.unwrap();
        assert!(b["detail"].as_str().unwrap().contains(word), "{b}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_routes_on_the_memory_source() {
    let source = common::memory_source(&common::calsim3_dir());
    let base = common::start_server(source, Config::default()).await;
    check_routes(&base).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_routes_on_postgis() {
    let (_url, pool) = common::postgis_with(&common::calsim3_dir(), "network").await;
    let base = common::start_server(common::postgis_source(pool), Config::default()).await;
    check_routes(&base).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_one_exists_in_the_sample() {
    let source: std::sync::Arc<dyn Source> = std::sync::Arc::new(
        coeqwal_network_api::source::memory::MemorySource::sample(&Config::default().layers)
            .unwrap(),
    );
    let base = common::start_server(source, Config::default()).await;
    let (s, an) = get(&base, "/api/network/analysis/node/1").await;
    assert_eq!(s, 200);
    assert_eq!(an["origin_id"], 1);
    let (s, down) = get(&base, "/network/nodes/SHSTA/downstream").await;
    assert_eq!(s, 200);
    assert!(down["node_count"].as_u64().unwrap() > 10);
}
