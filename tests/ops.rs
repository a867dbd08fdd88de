//! Operations: the healthcheck subcommand, a clean stop on SIGTERM (also with a request held
//! inside PostgreSQL by a lock), metrics and JSON logs, with the real binary.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_coeqwal-network-api");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The real binary serving the CalSim3 data from memory.
fn spawn_server(port: u16) -> std::process::Child {
    let child = Command::new(BIN)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(common::calsim3_dir())
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

#[test]
fn healthcheck_exits_0_when_healthy_and_1_when_nothing_listens() {
    let port = free_port();
    let mut server = spawn_server(port);
    let ok = Command::new(BIN)
        .args([
            "healthcheck",
            "--url",
            &format!("http://127.0.0.1:{port}/health"),
        ])
        .status()
        .unwrap();
    assert_eq!(ok.code(), Some(0));
    let by_env = Command::new(BIN)
        .arg("healthcheck")
        .env("LISTEN", format!("0.0.0.0:{port}"))
        .status()
        .unwrap();
    assert_eq!(by_env.code(), Some(0));
    server.kill().unwrap();
    server.wait().unwrap();
    let down = Command::new(BIN)
        .args([
            "healthcheck",
            "--url",
            &format!("http://127.0.0.1:{port}/health"),
        ])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(down.code(), Some(1));
}

#[tokio::test]
async fn sigterm_lets_a_request_in_flight_finish_then_exits_0() {
    let port = free_port();
    let mut server = spawn_server(port);
    // A large streamed page, read slowly: it is in flight when SIGTERM arrives.
    let mut response = reqwest::get(format!(
        "http://127.0.0.1:{port}/collections/arcs/items?limit=10000"
    ))
    .await
    .unwrap();
    let mut body = Vec::new();
    let first = response.chunk().await.unwrap().unwrap();
    body.extend_from_slice(&first);
    let term = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    while let Some(chunk) = response.chunk().await.unwrap() {
        body.extend_from_slice(&chunk);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let page: serde_json::Value = serde_json::from_slice(&body).expect("the whole page arrived");
    assert_eq!(page["numberReturned"], 1291);
    // New connections are refused once it stops; the process exits 0.
    let start = Instant::now();
    let status = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break status;
        }
        assert!(start.elapsed() < Duration::from_secs(25), "did not exit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(0));
}

/// The real binary serving a PostGIS database, killed when dropped.
struct PgServer {
    child: std::process::Child,
    port: u16,
}

impl PgServer {
    /// Starts the binary on a free port over `url` and returns once it answers `/health` (it
    /// accepts connections before its graph is loaded and its signal handler installed).
    fn start(url: &str, envs: &[(&str, &str)]) -> PgServer {
        let port = free_port();
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("DATABASE_URL", url)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut server = PgServer {
            child: cmd.spawn().unwrap(),
            port,
        };
        let start = Instant::now();
        while !server.healthy() {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("the server exited at startup: {status}");
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // The accept loop polls the signal future once it has no connection to take.
        std::thread::sleep(Duration::from_millis(200));
        server
    }

    /// Whether `GET /health` answers 200 on a new connection.
    fn healthy(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        if stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .is_err()
        {
            return false;
        }
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        answer.starts_with(b"HTTP/1.1 200")
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn sigterm(&self) {
        let term = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(term.success());
    }

    /// The exit status, once the process exits within `limit`.
    async fn exit_within(&mut self, limit: Duration) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < limit,
                "the server did not exit within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `n` statements (of servers other than this pool's own connection) wait on a
/// lock in PostgreSQL.
async fn wait_for_lock_waiters(pool: &sqlx::PgPool, n: i64) {
    let start = Instant::now();
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
             AND datname = current_database() AND pid <> pg_backend_pid()",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        if waiting >= n {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "only {waiting} of {n} requests reached the lock"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Takes the arcs table from every reader: the lock is held until the transaction ends.
async fn lock_arcs(pool: &sqlx::PgPool) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut locker = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE network_arc IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *locker)
        .await
        .unwrap();
    locker
}

/// A GET in the background: its status, headers and whole body.
fn get_in_background(
    url: String,
) -> tokio::task::JoinHandle<reqwest::Result<(u16, reqwest::header::HeaderMap, bytes::Bytes)>> {
    tokio::spawn(async move {
        let r = reqwest::get(url).await?;
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        Ok((status, headers, r.bytes().await?))
    })
}

#[tokio::test]
async fn sigterm_during_a_request_held_in_postgis_finishes_it_then_exits_0() {
    let (url, pool) = common::postgis_with(&common::sample_dir(), "sigterm").await;
    let mut server = PgServer::start(
        &url,
        &[
            ("SHUTDOWN_GRACE_SECS", "20"),
            ("REQUEST_TIMEOUT_SECS", "30"),
            ("CACHE_SIZE_MB", "0"),
        ],
    );
    let locker = lock_arcs(&pool).await;
    // A page and a tile of arcs, both waiting inside PostgreSQL for the lock.
    let page = get_in_background(server.url("/collections/arcs/items?limit=5"));
    let tile = get_in_background(server.url("/tiles/arcs/8/41/98.mvt"));
    wait_for_lock_waiters(&pool, 2).await;
    server.sigterm();
    let termed = Instant::now();
    // New connections are refused while the two requests still wait.
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], server.port));
    while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
        assert!(
            termed.elapsed() < Duration::from_millis(900),
            "a new connection is still accepted {:?} after SIGTERM",
            termed.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !page.is_finished() && !tile.is_finished(),
        "the requests should still wait on the lock"
    );
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server exited with requests in flight"
    );
    tokio::time::sleep(Duration::from_secs(1).saturating_sub(termed.elapsed())).await;
    locker.rollback().await.unwrap();
    let released = Instant::now();

    let (status, _, body) = page.await.unwrap().expect("the page is answered");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let page: serde_json::Value = serde_json::from_slice(&body).expect("the whole page arrived");
    assert_eq!(page["numberReturned"], 5);
    assert_eq!(page["features"].as_array().unwrap().len(), 5);
    let (status, headers, body) = tile.await.unwrap().expect("the tile is answered");
    assert_eq!(status, 200);
    if let Some(length) = headers.get("content-length") {
        assert_eq!(length.to_str().unwrap(), body.len().to_string());
    }
    let decoded = common::decode(&body);
    assert!(
        decoded.get("arcs").is_some_and(|f| !f.is_empty()),
        "the whole tile arrived: {decoded:?}"
    );
    // Once they are answered the process stops at once, well within the grace period.
    let status = server.exit_within(Duration::from_secs(20)).await;
    assert_eq!(status.code(), Some(0));
    assert!(
        released.elapsed() < Duration::from_secs(5),
        "exited {:?} after its last request",
        released.elapsed()
    );
}

#[tokio::test]
async fn a_request_held_past_the_grace_period_does_not_keep_the_process_alive() {
    let (url, pool) = common::postgis_with(&common::sample_dir(), "grace").await;
    let mut server = PgServer::start(
        &url,
        &[
            ("SHUTDOWN_GRACE_SECS", "2"),
            ("REQUEST_TIMEOUT_SECS", "60"),
            ("CACHE_SIZE_MB", "0"),
        ],
    );
    // The lock is held until the process is gone: the request cannot finish.
    let locker = lock_arcs(&pool).await;
    let tile = get_in_background(server.url("/tiles/arcs/8/41/98.mvt"));
    wait_for_lock_waiters(&pool, 1).await;
    server.sigterm();
    let termed = Instant::now();
    let status = server.exit_within(Duration::from_secs(15)).await;
    let took = termed.elapsed();
    assert_eq!(status.code(), Some(0));
    assert!(
        took >= Duration::from_millis(1800) && took < Duration::from_secs(6),
        "exited {took:?} after SIGTERM with a 2 s grace period"
    );
    // Its client sees the connection end without an answer.
    assert!(
        tile.await.unwrap().is_err(),
        "the held request cannot have been answered"
    );
    locker.rollback().await.unwrap();
}

/// Samples of Prometheus text as parsed by the reference Python client's parser
/// (`prometheus_client`, from PyPI): (name, labels, value).
fn parse_metrics(text: &str) -> Vec<(String, serde_json::Map<String, serde_json::Value>, f64)> {
    use std::io::Write;
    const SCRIPT: &str = "import sys, json\nfrom prometheus_client.parser import text_string_to_metric_families as parse\nprint(json.dumps([[s.name, s.labels, s.value] for f in parse(sys.stdin.read()) for s in f.samples]))";
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client cannot parse /metrics (install it with python3 -m pip install prometheus_client): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Vec<(String, serde_json::Map<String, serde_json::Value>, f64)>>(
        &out.stdout,
    )
    .unwrap()
}

/// The sum of the samples named `name` that carry `labels`.
fn counter(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    parse_metrics(text)
        .iter()
        .filter(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).and_then(|x| x.as_str()) == Some(*v))
        })
        .map(|(_, _, v)| v)
        .sum()
}

#[tokio::test]
async fn metrics_parse_as_prometheus_text_and_move_after_requests() {
    let base = common::start_server(
        common::memory_source(&common::sample_dir()),
        coeqwal_network_api::config::Config::default(),
    )
    .await;
    let scrape = || async {
        let r = reqwest::get(format!("{base}/metrics")).await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
        r.text().await.unwrap()
    };
    let before = scrape().await;
    let tile = [("route", "/tiles/{layers}/{z}/{x}/{y}"), ("status", "200")];
    let missing = [("route", "unmatched"), ("status", "404")];
    let tiles_before = counter(&before, "http_requests_total", &tile);
    for _ in 0..3 {
        let r = reqwest::get(format!("{base}/tiles/nodes,arcs/8/41/98.mvt"))
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers().contains_key("x-request-id"));
    }
    let r = reqwest::get(format!("{base}/no/such/route")).await.unwrap();
    assert_eq!(r.status(), 404);
    let after = scrape().await;
    assert_eq!(
        counter(&after, "http_requests_total", &tile) - tiles_before,
        3.0
    );
    assert!(counter(&after, "http_requests_total", &missing) >= 1.0);
    assert!(counter(&after, "tile_bytes_served_total", &[]) > 0.0);
    assert!(counter(&after, "tile_cache_hits_total", &[("layers", "nodes,arcs")]) >= 2.0);
    let samples = parse_metrics(&after);
    let names: std::collections::HashSet<&str> =
        samples.iter().map(|(n, _, _)| n.as_str()).collect();
    for name in [
        "http_request_duration_seconds_bucket",
        "tile_cache_bytes",
        "network_graph_nodes",
        "network_graph_arcs",
    ] {
        assert!(names.contains(name), "{name} missing from /metrics");
    }
}

#[tokio::test]
async fn metrics_from_postgis_show_the_pool_and_query_durations() {
    let (url, _pool) = common::postgis_with(&common::sample_dir(), "metrics").await;
    let server = PgServer::start(&url, &[("DB_POOL_SIZE", "4"), ("CACHE_SIZE_MB", "0")]);
    let client = reqwest::Client::new();
    let scrape = || async {
        let r = client.get(server.url("/metrics")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.text().await.unwrap()
    };
    let tile_queries = [("query", "tile")];
    let before = scrape().await;
    let count_before = counter(&before, "db_query_duration_seconds_count", &tile_queries);
    // Tiles of one place at four zooms, none requested before and none cached (no cache).
    for path in [
        "/tiles/arcs/8/41/98.mvt",
        "/tiles/arcs/7/20/49.mvt",
        "/tiles/arcs/6/10/24.mvt",
        "/tiles/nodes/8/41/98.mvt",
    ] {
        let r = client.get(server.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(!r.bytes().await.unwrap().is_empty(), "{path}");
    }
    let after = scrape().await;
    assert!(
        counter(&after, "db_query_duration_seconds_count", &tile_queries) - count_before >= 4.0,
        "the query histogram did not count the tile queries:\n{after}"
    );
    assert!(counter(&after, "db_query_duration_seconds_sum", &tile_queries) > 0.0);
    let samples = parse_metrics(&after);
    assert!(
        samples
            .iter()
            .any(|(n, l, _)| n == "db_query_duration_seconds_bucket"
                && l.get("query").and_then(|q| q.as_str()) == Some("tile")),
        "db_query_duration_seconds has no buckets"
    );
    assert_eq!(counter(&after, "db_pool_max_connections", &[]), 4.0);
    let open = counter(&after, "db_pool_connections", &[("state", "open")]);
    let idle = counter(&after, "db_pool_connections", &[("state", "idle")]);
    let in_use = counter(&after, "db_pool_connections", &[("state", "in_use")]);
    assert!((1.0..=4.0).contains(&open), "{open} connections open");
    assert_eq!(idle + in_use, open, "idle {idle} + in use {in_use}");
    for state in ["open", "idle", "in_use"] {
        assert!(
            samples.iter().any(|(n, l, _)| n == "db_pool_connections"
                && l.get("state").and_then(|s| s.as_str()) == Some(state)),
            "db_pool_connections{{state={state:?}}} missing"
        );
    }
}

#[tokio::test]
async fn json_logs_are_one_object_a_line_and_never_show_the_database_password() {
    let (url, _pool) = common::postgis_with(&common::sample_dir(), "logs").await;
    // The throwaway cluster trusts local connections, so any password is accepted; with a
    // given DATABASE_URL that has one, that password is the secret to look for.
    let (url, secret) = with_password(&url, "s3cret-Pw-in-url");
    let port = free_port();
    let server = Command::new(BIN)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", &url)
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .env("SLOW_QUERY_MS", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let client = reqwest::Client::new();
    for path in [
        "/tiles/nodes,arcs/8/41/98.mvt",
        "/collections/nodes/items?limit=3",
        "/tiles/nope/1/0/0.mvt",
        "/ready",
    ] {
        client
            .get(format!("{base}{path}"))
            .header("x-request-id", "req-42")
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
    }
    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    let output = server.wait_with_output().unwrap();
    let log = String::from_utf8(output.stderr).unwrap();
    assert!(!log.contains(&secret), "the password appears in the log");
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let requests: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "request")
        .collect();
    assert_eq!(requests.len(), 4, "one line per request");
    for r in &requests {
        assert_eq!(r["span"]["request_id"], "req-42");
        assert!(r["fields"]["latency_ms"].is_number());
        assert!(r["span"]["route"].is_string());
    }
    // With a 0 ms threshold every query is slow: the warning names the tile.
    assert!(lines.iter().any(|l| l["level"] == "WARN"
        && l["fields"]["message"] == "slow query"
        && l["fields"]["target"] == "nodes,arcs 8/41/98"));

    // A database that cannot be reached: the error names it without the password.
    let dead = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env(
            "DATABASE_URL",
            format!("postgres://someone:{secret}@127.0.0.1:1/db"),
        )
        .env("LOG_FORMAT", "json")
        .output()
        .unwrap();
    assert!(!dead.status.success());
    let text = String::from_utf8_lossy(&dead.stderr);
    assert!(text.contains("cannot connect"), "{text}");
    assert!(!text.contains(&secret), "{text}");
    // The fatal error is a JSON line too, like every other line of the log.
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let last = lines.last().expect("the error is logged");
    assert_eq!(last["level"], "ERROR", "{last}");
    assert!(
        last["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("cannot connect")),
        "{last}"
    );
}

/// The URL with a password: its own when it has one, else `password` put in.
fn with_password(url: &str, password: &str) -> (String, String) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    match authority.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((_, pw)) if !pw.is_empty() => (url.to_string(), pw.to_string()),
            _ => (
                format!("{scheme}://{user}:{password}@{host}/{path}"),
                password.to_string(),
            ),
        },
        None => (
            format!("{scheme}://postgres:{password}@{authority}/{path}"),
            password.to_string(),
        ),
    }
}
