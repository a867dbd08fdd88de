//! Operations: the healthcheck subcommand and a clean stop on SIGTERM, with the real binary.

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
