//! The tile cache and live change: HTTP caching, compression, the size bound, and changes made
//! in PostGIS reaching two running instances through LISTEN/NOTIFY.

mod common;

use coeqwal_network_api::app::{AppState, router};
use coeqwal_network_api::config::Config;
use coeqwal_network_api::source::Source;
use serde_json::Value;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// A real server with its state kept, optionally listening for changes.
async fn serve(
    source: Arc<dyn Source>,
    config: Config,
    listen_url: Option<&str>,
) -> (String, AppState) {
    let state = AppState::load(config, source).await.expect("graph builds");
    if let Some(url) = listen_url {
        coeqwal_network_api::changes::spawn(state.clone(), url.to_string());
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = router(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, state)
}

fn hits(state: &AppState) -> u64 {
    state
        .tiles
        .counters()
        .iter()
        .map(|(_, c)| c.hits.load(Ordering::Relaxed))
        .sum()
}

/// Position of a node (by id) in a decoded tile, in tile units.
async fn node_in_tile(base: &str, tile: &str, id: u64) -> Option<(f64, f64)> {
    let r = reqwest::get(format!("{base}/tiles/nodes/{tile}.mvt"))
        .await
        .unwrap();
    if r.status() != 200 {
        return None;
    }
    let decoded = common::decode(&r.bytes().await.unwrap());
    decoded
        .get("nodes")?
        .iter()
        .find(|f| f.id == Some(id))
        .and_then(|f| match &f.geometry {
            geo::Geometry::Point(p) => Some((p.x(), p.y())),
            geo::Geometry::MultiPoint(m) => m.0.first().map(|p| (p.x(), p.y())),
            _ => None,
        })
}

async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_reach_two_instances() {
    let (url, pool) = common::postgis_with(&common::calsim3_dir(), "live").await;
    let (a, sa) = serve(
        common::postgis_source(pool.clone()),
        Config::default(),
        Some(&url),
    )
    .await;
    let (b, sb) = serve(
        common::postgis_source(pool.clone()),
        Config::default(),
        Some(&url),
    )
    .await;
    // Let both LISTEN connections open.
    tokio::time::sleep(Duration::from_millis(300)).await;
    // SHSTA (id 81) at -122.4188, 40.7182 lies in 10/163/384; an unaffected tile near Fresno.
    let shasta_tile = "10/163/384";
    let far_tile = "10/171/399";
    for base in [&a, &b] {
        assert!(node_in_tile(base, shasta_tile, 81).await.is_some());
        node_in_tile(base, shasta_tile, 81).await;
        reqwest::get(format!("{base}/tiles/nodes/{far_tile}.mvt"))
            .await
            .unwrap();
    }
    let before = node_in_tile(&a, shasta_tile, 81).await.unwrap();
    // Move SHSTA a little inside its tile.
    sqlx::query("UPDATE network_node SET geom = ST_Translate(geom, 0.01, 0.005) WHERE id = 81")
        .execute(&pool)
        .await
        .unwrap();
    for (base, name) in [(&a, "instance A"), (&b, "instance B")] {
        let took = eventually(name, Duration::from_secs(1), || async {
            node_in_tile(base, shasta_tile, 81)
                .await
                .is_some_and(|p| p != before)
        })
        .await;
        println!("{name}: the change showed after {took:?}");
    }
    // The far tile is still cached: requesting it is a hit.
    for state in [&sa, &sb] {
        let h = hits(state);
        let base = if std::ptr::eq(state, &sa) { &a } else { &b };
        reqwest::get(format!("{base}/tiles/nodes/{far_tile}.mvt"))
            .await
            .unwrap();
        assert_eq!(hits(state), h + 1, "unaffected tile still a hit");
    }

    // A new arc reaches the graph: SAC240 gets a new downstream node.
    sqlx::query(
        "INSERT INTO network_arc (id, short_code, arc_type, from_node, to_node, geom) \
         SELECT 99001, 'C_TEST', 'CH', 'SAC240', 'EMD001', ST_MakeLine(a.geom, b.geom) \
         FROM network_node a, network_node b WHERE a.short_code = 'SAC240' AND b.short_code = 'EMD001'",
    )
    .execute(&pool)
    .await
    .unwrap();
    for base in [&a, &b] {
        eventually("new arc in the graph", Duration::from_secs(1), || async {
            let v: Value = reqwest::get(format!("{base}/network/nodes/SAC240/downstream"))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["short_code"] == "EMD001")
        })
        .await;
    }

    // Kill the LISTEN connections: the instances reconnect and the next change still arrives.
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE query ILIKE 'LISTEN%' AND pid <> pg_backend_pid()",
    )
    .execute(&pool)
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = node_in_tile(&a, shasta_tile, 81).await.unwrap();
    sqlx::query("UPDATE network_node SET geom = ST_Translate(geom, -0.01, -0.005) WHERE id = 81")
        .execute(&pool)
        .await
        .unwrap();
    for base in [&a, &b] {
        eventually("change after reconnect", Duration::from_secs(5), || async {
            node_in_tile(base, shasta_tile, 81)
                .await
                .is_some_and(|p| p != before)
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etags_encodings_and_the_size_bound() {
    let source = common::memory_source(&common::calsim3_dir());
    let config = Config {
        cache_size_mb: 1,
        ..Config::default()
    };
    let (base, state) = serve(source, config, None).await;
    let client = reqwest::Client::new();
    let url = format!("{base}/tiles/nodes,arcs,demand_units/8/41/98.mvt");
    let plain = client.get(&url).send().await.unwrap();
    assert_eq!(plain.headers()["cache-control"], "public, max-age=300");
    assert_eq!(plain.headers()["vary"], "Accept-Encoding");
    let etag = plain.headers()["etag"].to_str().unwrap().to_string();
    assert!(etag.starts_with('"'));
    let raw = plain.bytes().await.unwrap();
    // 304 on If-None-Match.
    let again = client
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);
    // gzip and brotli decode to the same bytes.
    let gz = client
        .get(&url)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&gz.bytes().await.unwrap()[..])
        .read_to_end(&mut out)
        .unwrap();
    assert_eq!(out, raw);
    let br = client
        .get(&url)
        .header("accept-encoding", "gzip, br")
        .send()
        .await
        .unwrap();
    assert_eq!(br.headers()["content-encoding"], "br");
    let mut out = Vec::new();
    brotli::Decompressor::new(&br.bytes().await.unwrap()[..], 4096)
        .read_to_end(&mut out)
        .unwrap();
    assert_eq!(out, raw);
    // TileJSON and GeoJSON carry ETags too.
    for path in [
        "/tiles/nodes.json",
        "/collections/nodes/items?limit=5",
        "/tiles/nodes/8/41/98.geojson",
    ] {
        let r = client.get(format!("{base}{path}")).send().await.unwrap();
        let etag = r.headers()["etag"].to_str().unwrap().to_string();
        let r = client
            .get(format!("{base}{path}"))
            .header("if-none-match", etag)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 304, "{path}");
    }
    // Feature pages are streamed (chunked, no Content-Length) and gzip-compressed on the fly.
    let page = client
        .get(format!("{base}/collections/nodes/items?limit=1400"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(page.headers()["content-encoding"], "gzip");
    assert!(page.headers().get("content-length").is_none());
    let mut text = String::new();
    flate2::read::GzDecoder::new(&page.bytes().await.unwrap()[..])
        .read_to_string(&mut text)
        .unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["numberReturned"], 1400);
    assert_eq!(v["features"].as_array().unwrap().len(), 1400);

    // Fill past the 1 MiB bound: bytes held stay under it.
    for z in 9..=12u32 {
        for t in coeqwal_network_api::tiles::grid::TileCoord::covering(
            &coeqwal_network_api::tiles::grid::Bounds {
                minx: -122.8,
                miny: 37.0,
                maxx: -120.5,
                maxy: 40.8,
            },
            z as u8,
        ) {
            client
                .get(format!(
                    "{base}/tiles/nodes,arcs,demand_units/{}/{}/{}.mvt",
                    t.z, t.x, t.y
                ))
                .send()
                .await
                .unwrap();
        }
    }
    let (entries, bytes) = state.tiles.usage().await;
    assert!(bytes <= 1024 * 1024, "{bytes} bytes held");
    assert!(entries > 0);
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("tile_cache_bytes"), "{metrics}");
    assert!(metrics.contains("tile_cache_evictions_total"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warming_fills_the_cache() {
    let source = common::memory_source(&common::calsim3_dir());
    let (base, state) = serve(source, Config::default(), None).await;
    // The warm subcommand asks the running server for every tile over the data.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_coeqwal-network-api"))
        .args(["warm", "--url", &base, "--zooms", "5-8", "--quiet"])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("warmed ") && stdout.contains("0 failed"),
        "{stdout}"
    );
    let (entries, _) = state.tiles.usage().await;
    assert!(entries >= 20, "{entries} tiles cached");
    let bad = tokio::process::Command::new(env!("CARGO_BIN_EXE_coeqwal-network-api"))
        .args(["warm", "--url", &base, "--zooms", "9-3"])
        .output()
        .await
        .unwrap();
    assert!(!bad.status.success());

    // /api/workshop/status warms this instance in the background and reports progress.
    let config = Config {
        warm_zooms: "0-9".into(),
        ..Config::default()
    };
    let (base, state) = serve(common::memory_source(&common::calsim3_dir()), config, None).await;
    let v: Value = reqwest::get(format!("{base}/api/workshop/status"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["cache"]["warm_zooms"], "0-9");
    eventually("warm-up finishes", Duration::from_secs(30), || async {
        let v: Value = reqwest::get(format!("{base}/api/workshop/status"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["cache"]["tiles_total"].as_u64().unwrap_or(0) > 0
            && v["cache"]["tiles_done"] == v["cache"]["tiles_total"]
            && v["cache"]["warming"] == false
    })
    .await;
    let (entries, _) = state.tiles.usage().await;
    assert!(entries > 50, "{entries}");
}

/// A redis-server of our own on a free port, killed on drop.
struct Redis(std::process::Child, u16);

impl Redis {
    fn start() -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is installed (scripts/test installs it)");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Redis(child, port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_is_a_shared_second_level() {
    let mut redis = Redis::start();
    let (url, pool) = common::postgis_with(&common::calsim3_dir(), "redis").await;
    let config = || Config {
        redis_url: Some(format!("redis://127.0.0.1:{}/", redis.1)),
        ..Config::default()
    };
    let (a, sa) = serve(common::postgis_source(pool.clone()), config(), Some(&url)).await;
    let (b, sb) = serve(common::postgis_source(pool.clone()), config(), Some(&url)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let generated = |s: &AppState| s.source_tiles.load(Ordering::Relaxed);
    let tile = "nodes,arcs/9/81/192";
    let from_a = reqwest::get(format!("{a}/tiles/{tile}.mvt"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(generated(&sa), 1);
    let from_b = reqwest::get(format!("{b}/tiles/{tile}.mvt"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        generated(&sb),
        0,
        "B served A's tile from Redis without asking PostGIS"
    );
    assert_eq!(from_a, from_b);
    let metrics = reqwest::get(format!("{b}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("tile_cache_redis_hits_total"), "{metrics}");

    // A change reaches Redis too: B must not get the old tile back from it.
    let before = node_in_tile(&b, "10/163/384", 81).await.unwrap();
    sqlx::query("UPDATE network_node SET geom = ST_Translate(geom, 0.01, 0.005) WHERE id = 81")
        .execute(&pool)
        .await
        .unwrap();
    eventually("change through Redis", Duration::from_secs(2), || async {
        node_in_tile(&b, "10/163/384", 81)
            .await
            .is_some_and(|p| p != before)
    })
    .await;

    // Redis goes away: requests keep succeeding, cached or not.
    let _ = redis.0.kill();
    let _ = redis.0.wait();
    for base in [&a, &b] {
        for path in [
            format!("/tiles/{tile}.mvt"),
            "/tiles/nodes,arcs/9/82/193.mvt".to_string(),
        ] {
            let r = reqwest::get(format!("{base}{path}")).await.unwrap();
            assert!(r.status().is_success(), "{path}: {}", r.status());
        }
    }
}
