//! Faults and slow clients, with the real binary: slow and idle connections are closed, a
//! request past its timeout is cancelled with its query, CORS follows its allow-list, and a
//! PostgreSQL that stops and starts again (a cluster of this test's own) is survived without a
//! restart.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_coeqwal-network-api");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The server binary, killed when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(args: &[&str], envs: &[(&str, &str)]) -> Server {
        let port = free_port();
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(args)
            .env_remove("DATABASE_URL")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Server { child, port }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads until the server closes the connection (Ok) or `limit` passes (Err).
fn wait_for_close(stream: &mut TcpStream, limit: Duration) -> Result<Vec<u8>, String> {
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(seen),
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(seen),
            Err(e) => return Err(format!("still open after {limit:?}: {e}")),
        }
    }
}

#[test]
fn slow_and_idle_clients_are_disconnected() {
    let sample = common::sample_dir();
    let server = Server::start(
        &["--data", sample.to_str().unwrap()],
        &[("CLIENT_TIMEOUT_SECS", "1")],
    );
    // Slowloris: a request head that never ends.
    let mut slow = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(200));
        if slow.write_all(b"X-Slow: 1\r\n").is_err() {
            break;
        }
    }
    wait_for_close(&mut slow, Duration::from_secs(10)).expect("a slow client is disconnected");

    // Keep-alive: one full request and answer, then silence.
    let mut idle = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let seen = wait_for_close(&mut idle, Duration::from_secs(10))
        .expect("an idle keep-alive connection is closed");
    let text = String::from_utf8_lossy(&seen);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");

    // A client that is quick enough is served as usual.
    assert_eq!(get(&server.url("/health")).0, 200);
}

#[test]
fn cors_follows_the_allow_list() {
    let sample = common::sample_dir();
    let open = Server::start(&["--data", sample.to_str().unwrap()], &[]);
    let listed = Server::start(
        &["--data", sample.to_str().unwrap()],
        &[(
            "CORS_ALLOW_ORIGINS",
            "https://maps.example.org,https://b.example",
        )],
    );
    let origin_of = |server: &Server, origin: &str| -> Option<String> {
        let out = Command::new("curl")
            .args(["-s", "-D", "-", "-o", "/dev/null", "-H"])
            .arg(format!("Origin: {origin}"))
            .arg(server.url("/tiles/nodes/8/41/98.mvt"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("access-control-allow-origin:")
                .map(|v| v.trim().to_string())
        })
    };
    assert_eq!(
        origin_of(&open, "https://anywhere.example"),
        Some("*".into())
    );
    assert_eq!(
        origin_of(&listed, "https://maps.example.org"),
        Some("https://maps.example.org".into())
    );
    assert_eq!(origin_of(&listed, "https://evil.example"), None);
}

/// Status, headers and body of a GET, with a 10 s bound so a hang fails instead of waiting.
fn get(url: &str) -> (u16, String, String) {
    let out = Command::new("curl")
        .args(["-s", "-D", "-", "--max-time", "10", url])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_string())
}

#[tokio::test]
async fn a_request_past_its_timeout_is_cancelled_with_its_query() {
    let (url, pool) = common::postgis_with(&common::sample_dir(), "timeout").await;
    let server = Server::start(
        &[],
        &[
            ("DATABASE_URL", url.as_str()),
            ("REQUEST_TIMEOUT_SECS", "1"),
            ("DB_POOL_SIZE", "1"),
        ],
    );
    // A writer holds the nodes table: readers of it wait on the lock.
    let mut locker = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE network_node IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *locker)
        .await
        .unwrap();
    let page = server.url("/collections/nodes/items?limit=5");
    let (status, head, body) = tokio::task::spawn_blocking(move || get(&page))
        .await
        .unwrap();
    assert_eq!(status, 503, "{head}{body}");
    assert!(
        head.contains("content-type: application/problem+json"),
        "{head}"
    );
    assert!(head.contains("retry-after:"), "{head}");
    // Whichever ends it first, the request timeout or the statement timeout (both 1 s).
    assert!(
        body.contains("longer than 1 s") || body.contains("could not answer in time"),
        "{body}"
    );
    // The statement was stopped too (statement_timeout): nothing of the server still waits.
    let mut waiting = i64::MAX;
    for _ in 0..50 {
        waiting = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if waiting == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(waiting, 0, "the cancelled query still waits in PostgreSQL");
    // The queue for the pool is bounded (32 per connection): of 50 requests at once, those
    // beyond it are refused at once instead of piling up.
    let children: Vec<Child> = (0..50)
        .map(|i| {
            Command::new("curl")
                .args(["-s", "--max-time", "10"])
                .arg(server.url(&format!("/collections/nodes/items?limit=5&offset={i}")))
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let answers: Vec<(u16, String, String)> = children
        .into_iter()
        .map(|c| {
            let body = String::from_utf8_lossy(&c.wait_with_output().unwrap().stdout).to_string();
            let status = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["status"].as_u64())
                .unwrap_or(0) as u16;
            (status, String::new(), body)
        })
        .collect();
    assert!(answers.iter().all(|a| a.0 == 503), "{answers:?}");
    let refused = answers.iter().filter(|a| a.2.contains("busy")).count();
    assert!(
        refused >= 12,
        "only {refused} of 20 refused at once: {answers:?}"
    );
    locker.rollback().await.unwrap();
    let page = server.url("/collections/nodes/items?limit=5");
    let (status, _, _) = tokio::task::spawn_blocking(move || get(&page))
        .await
        .unwrap();
    assert_eq!(status, 200);
}

/// Server-side statements of this test's server waiting on a lock.
async fn lock_waiters(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_client_that_disconnects_has_its_query_stopped() {
    let (url, pool) = common::postgis_with(&common::sample_dir(), "disconnect").await;
    // Timeouts far away: only the client's leaving can stop these statements early.
    let server = Server::start(
        &["--cache-size-mb", "0"],
        &[
            ("DATABASE_URL", url.as_str()),
            ("REQUEST_TIMEOUT_SECS", "60"),
        ],
    );
    let mut locker = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE network_node IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *locker)
        .await
        .unwrap();
    // A GeoJSON page and a tile, each abandoned by its client after one second.
    let children: Vec<Child> = [
        "/collections/nodes/items?limit=5",
        "/tiles/nodes/8/41/98.mvt",
        "/api/search?q=shasta",
    ]
    .iter()
    .map(|path| {
        Command::new("curl")
            .args(["-s", "-o", "/dev/null", "--max-time", "1"])
            .arg(server.url(path))
            .spawn()
            .unwrap()
    })
    .collect();
    let mut peak = 0;
    for _ in 0..8 {
        peak = peak.max(lock_waiters(&pool).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(peak, 3, "the three statements should wait on the lock");
    for mut c in children {
        c.wait().unwrap();
    }
    let left_at = Instant::now();
    // The server closes the abandoned connections; PostgreSQL checks every second and stops
    // their statements, long before the 60 s statement timeout.
    let mut waiting = i64::MAX;
    while left_at.elapsed() < Duration::from_secs(5) {
        waiting = lock_waiters(&pool).await;
        if waiting == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        waiting,
        0,
        "statements of departed clients still wait after {:?}",
        left_at.elapsed()
    );
    locker.rollback().await.unwrap();
    let metrics = server.url("/metrics");
    let (_, _, body) = tokio::task::spawn_blocking(move || get(&metrics))
        .await
        .unwrap();
    assert!(body.contains("db_queries_abandoned_total 3"), "{body}");
    // The pool replaced the closed connections: the server still answers from the database.
    let page = server.url("/collections/nodes/items?limit=5");
    let (status, _, _) = tokio::task::spawn_blocking(move || get(&page))
        .await
        .unwrap();
    assert_eq!(status, 200);
}

/// A PostgreSQL cluster of this test's own, which it may stop and start.
struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
}

impl Cluster {
    fn bin() -> PathBuf {
        if let Ok(b) = std::env::var("PGTEST_BIN") {
            return PathBuf::from(b);
        }
        let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL is installed (scripts/test installs it)")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|p| p.join("initdb").exists())
            .collect();
        dirs.sort();
        dirs.pop().expect("an initdb")
    }

    /// Runs a PostgreSQL program, as `postgres` when we are root (PostgreSQL refuses root).
    fn run(&self, program: &str, args: &[&str]) -> std::process::Output {
        let exe = self.bin.join(program);
        let mut cmd = if unsafe_is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        cmd.args(args).output().unwrap()
    }

    fn create() -> Cluster {
        let dir = std::env::temp_dir().join(format!("coeqwal-fault-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        if unsafe_is_root() {
            Command::new("chown")
                .arg("postgres")
                .arg(&dir)
                .status()
                .unwrap();
        }
        let cluster = Cluster {
            bin: Cluster::bin(),
            port: free_port(),
            dir,
        };
        let data = cluster.dir.join("data");
        let out = cluster.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        cluster.start();
        cluster
    }

    fn start(&self) {
        let data = self.dir.join("data");
        let log = self.dir.join("server.log");
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        let out = self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-o",
                &opts,
                "start",
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn stop(&self) {
        let data = self.dir.join("data");
        let out = self.run(
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-m", "fast", "-w", "stop"],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = self.run(
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-m", "immediate", "stop"],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn unsafe_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

#[tokio::test]
async fn a_database_that_stops_and_starts_again_is_survived_without_a_restart() {
    let cluster = Cluster::create();
    let url = cluster.url();
    {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        coeqwal_network_api::MIGRATOR.run(&pool).await.unwrap();
        let layers = coeqwal_network_api::config::Config::default().layers;
        coeqwal_network_api::import::import_paths(&pool, &[common::sample_dir()], &layers, false)
            .await
            .unwrap();
        pool.close().await;
    }
    let server = Server::start(&[], &[("DATABASE_URL", url.as_str())]);
    let cached = server.url("/tiles/nodes,arcs/8/41/98.mvt");
    let g = |u: String| async move { tokio::task::spawn_blocking(move || get(&u)).await.unwrap() };
    assert_eq!(g(cached.clone()).await.0, 200);

    // Clients keep asking through the stop and the start: a cached tile, and uncached ones.
    let stop_load = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = (0..8)
        .map(|client| {
            let stop_load = stop_load.clone();
            let (cached, port) = (cached.clone(), server.port);
            tokio::spawn(async move {
                let http = reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .unwrap();
                let mut seen = Vec::new();
                let mut i = 0u32;
                while !stop_load.load(std::sync::atomic::Ordering::Relaxed) {
                    i += 1;
                    let uncached = client % 2 == 1;
                    let url = if uncached {
                        format!(
                            "http://127.0.0.1:{port}/collections/nodes/items?limit=3&offset={}",
                            (client * 1000 + i) % 70
                        )
                    } else {
                        cached.clone()
                    };
                    let started = Instant::now();
                    let answer = http.get(&url).send().await;
                    let took = started.elapsed();
                    let (status, retry) = match &answer {
                        Ok(r) => (r.status().as_u16(), r.headers().contains_key("retry-after")),
                        Err(_) => (0, false),
                    };
                    seen.push((uncached, status, retry, took));
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                seen
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;

    cluster.stop();
    let stopped = Instant::now();
    // Cached tiles keep flowing; uncached requests get a quick 503 with Retry-After (within
    // 2 s, the pool's 1.5 s acquire timeout); /ready says not ready while /health says alive.
    assert_eq!(g(cached.clone()).await.0, 200);
    let started = Instant::now();
    let (status, head, _) = g(server.url("/tiles/nodes,arcs/8/40/98.mvt")).await;
    let to_503 = started.elapsed();
    assert_eq!(status, 503, "{head}");
    assert!(head.contains("retry-after:"), "{head}");
    assert!(to_503 < Duration::from_secs(2), "503 took {to_503:?}");
    assert_eq!(g(server.url("/ready")).await.0, 503);
    assert_eq!(g(server.url("/health")).await.0, 200);
    // Many uncached requests at once: all answered (no pile-up behind the pool).
    let burst: Vec<_> = (0..40)
        .map(|i| g(server.url(&format!("/tiles/nodes/10/{}/391.mvt", 160 + i))))
        .collect();
    for r in futures::future::join_all(burst).await {
        assert_eq!(r.0, 503);
    }
    let down_for = stopped.elapsed();

    cluster.start();
    let restarted = Instant::now();
    let recovered = loop {
        if g(server.url("/tiles/nodes,arcs/8/40/98.mvt")).await.0 != 503
            && g(server.url("/ready")).await.0 == 200
        {
            break restarted.elapsed();
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(60),
            "never recovered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        recovered < Duration::from_secs(5),
        "recovered only {recovered:?} after the start"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop_load.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut answers = Vec::new();
    for l in load {
        answers.extend(l.await.unwrap());
    }
    // What the clients saw through it all: the cached tile always 200; every other answer a
    // 200 or a 503 with Retry-After, and none of them slower than 2 s.
    let cached_answers: Vec<_> = answers.iter().filter(|a| !a.0).collect();
    assert!(cached_answers.len() > 20 && cached_answers.iter().all(|a| a.1 == 200));
    let failed: Vec<_> = answers
        .iter()
        .filter(|a| a.0 && !(a.1 == 200 || (a.1 == 503 && a.2)))
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    assert!(answers.iter().any(|a| a.0 && a.1 == 503), "no 503 was seen");
    let slowest = answers.iter().map(|a| a.3).max().unwrap_or_default();
    assert!(
        slowest < Duration::from_secs(2),
        "an answer took {slowest:?}"
    );
    // The LISTEN connection came back too: a change made now reaches the server.
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query("INSERT INTO network_arc (id, short_code, name, arc_type, from_node, to_node, geom) VALUES (900001, 'T_FAULT', 'test', 'CH', 'SHSTA', 'KSWCK', ST_GeomFromText('LINESTRING(-122.41 40.71, -122.44 40.61)', 4326))")
        .execute(&pool)
        .await
        .unwrap();
    let arc = server.url("/network/arcs/T_FAULT");
    let mut seen = false;
    for _ in 0..100 {
        if g(arc.clone()).await.0 == 200 {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen, "a change after the restart never reached the server");
    let listening = restarted.elapsed();
    assert!(
        listening < Duration::from_secs(5),
        "the LISTEN connection came back only {listening:?} after the start"
    );
    println!(
        "database fault (down {down_for:?}, {} answers under load): first uncached answer after the stop in {to_503:?}; \
         requests recovered {recovered:?} and changes {listening:?} after the start; slowest answer {slowest:?}",
        answers.len()
    );
}

#[tokio::test]
async fn the_server_runs_with_the_least_privileged_role() {
    let (url, pool) = common::postgis_with(&common::sample_dir(), "reader").await;
    let script = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/reader-role.sql"),
    )
    .unwrap();
    sqlx::raw_sql(&script).execute(&pool).await.unwrap();
    sqlx::raw_sql("ALTER ROLE coeqwal_reader PASSWORD 'reader-pw'")
        .execute(&pool)
        .await
        .unwrap();
    let (scheme, rest) = url.split_once("://").unwrap();
    let host_and_db = rest.rsplit_once('@').map(|(_, h)| h).unwrap_or(rest);
    let reader_url = format!("{scheme}://coeqwal_reader:reader-pw@{host_and_db}");

    // The role may not write.
    let reader = sqlx::PgPool::connect(&reader_url).await.unwrap();
    let denied = sqlx::query("DELETE FROM network_node")
        .execute(&reader)
        .await;
    assert!(
        denied
            .unwrap_err()
            .to_string()
            .contains("permission denied"),
        "the reader role can write"
    );

    // Everything the server does works with it, LISTEN included.
    let server = Server::start(&[], &[("DATABASE_URL", reader_url.as_str())]);
    for path in [
        "/ready",
        "/tiles/nodes,arcs,demand_units/8/41/98.mvt",
        "/tiles/nodes/8/41/98.geojson",
        "/collections/nodes/items?limit=5",
        "/collections/demand_units/items/1",
        "/network/nodes/SHSTA/downstream",
        "/api/search?q=SHA",
        "/catalog",
    ] {
        let (status, _, body) = get(&server.url(path));
        assert_eq!(status, 200, "{path}: {body}");
    }
    let mut listening = 0i64;
    for _ in 0..50 {
        listening = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = 'coeqwal_reader' AND query LIKE 'LISTEN%'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if listening > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        listening, 1,
        "the server does not LISTEN as the reader role"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_never_see_a_half_imported_layer() {
    let (url, pool) = common::fresh_database("halfimport").await;
    let server = Server::start(&[], &[("DATABASE_URL", url.as_str())]);
    let importing = tokio::spawn(async move {
        let layers = coeqwal_network_api::config::Config::default().layers;
        coeqwal_network_api::import::import_paths(&pool, &[common::calsim3_dir()], &layers, false)
            .await
            .unwrap();
    });
    let client = reqwest::Client::new();
    let mut seen = std::collections::BTreeSet::new();
    let matched = |layer: &str| {
        let url = server.url(&format!("/collections/{layer}/items?limit=1"));
        let client = client.clone();
        async move {
            let page: serde_json::Value =
                client.get(url).send().await.unwrap().json().await.unwrap();
            page["numberMatched"].as_u64().unwrap()
        }
    };
    let mut rounds_during_import = 0;
    while !importing.is_finished() {
        rounds_during_import += 1;
        for (layer, full) in [("nodes", 1400), ("arcs", 1291), ("demand_units", 257)] {
            let n = matched(layer).await;
            assert!(
                n == 0 || n == full,
                "{layer}: a reader saw {n} of {full} features"
            );
            seen.insert((layer, n));
        }
    }
    importing.await.unwrap();
    // The readers really read while the import ran (it writes 2,948 rows: seconds).
    assert!(
        rounds_during_import >= 3,
        "only {rounds_during_import} reading rounds during the import"
    );
    for (layer, full) in [("nodes", 1400), ("arcs", 1291), ("demand_units", 257)] {
        assert_eq!(matched(layer).await, full);
    }
    println!("during the import ({rounds_during_import} rounds) readers saw: {seen:?}");
}
