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
