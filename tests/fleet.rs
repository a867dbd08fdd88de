//! A fleet behind a load balancer: three server processes behind nginx (Debian's package, as
//! a stand-in for the ALB) with `proxy_next_upstream` retries and passive health checks. One
//! instance is killed with SIGKILL under load: no client sees an error. It is started again:
//! it rejoins and serves.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_coeqwal-network-api");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for(port: u16) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "port {port} never opened"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One instance serving the CalSim3 data from memory on `port`.
fn instance(port: u16) -> Child {
    let child = Command::new(BIN)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(common::calsim3_dir())
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(port);
    child
}

/// nginx in a folder of its own, balancing over `ports`; stopped when dropped.
struct Nginx {
    dir: std::path::PathBuf,
    child: Child,
    port: u16,
}

impl Nginx {
    fn start(ports: &[u16]) -> Nginx {
        let dir = std::env::temp_dir().join(format!("coeqwal-nginx-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        let port = free_port();
        let servers: String = ports
            .iter()
            .map(|p| format!("    server 127.0.0.1:{p} max_fails=1 fail_timeout=3s;\n"))
            .collect();
        let root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        let conf = format!(
            "{user}worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {dir}/tmp/body;
  proxy_temp_path {dir}/tmp/proxy;
  fastcgi_temp_path {dir}/tmp/fastcgi;
  uwsgi_temp_path {dir}/tmp/uwsgi;
  scgi_temp_path {dir}/tmp/scgi;
  upstream api {{
{servers}    keepalive 32;
  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://api;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
      proxy_connect_timeout 1s;
      proxy_next_upstream error timeout http_502 http_503 http_504;
      proxy_next_upstream_tries 3;
      add_header X-Upstream $upstream_addr always;
    }}
  }}
}}
",
            user = if root { "user root;\n" } else { "" },
            dir = dir.display(),
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let child = Command::new("nginx")
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nginx runs (scripts/test installs Debian's nginx)");
        wait_for(port);
        Nginx { dir, child, port }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Requests a client of the map makes: tiles across zooms, pages, network answers.
fn paths(i: u64) -> String {
    match i % 5 {
        0 => format!("/tiles/nodes,arcs,demand_units/8/{}/98.mvt", 40 + i % 3),
        1 => format!("/tiles/nodes,arcs/10/{}/{}.mvt", 163 + i % 4, 391 + i % 4),
        2 => "/collections/arcs/items?bbox=-122,38,-121,39&limit=50".into(),
        3 => "/network/nodes/SHSTA/downstream".into(),
        _ => "/api/search?q=SAC&limit=5".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_instance_costs_no_client_an_error_and_rejoins_when_restarted() {
    let ports = [free_port(), free_port(), free_port()];
    let mut instances: Vec<Child> = ports.iter().map(|&p| instance(p)).collect();
    let nginx = Nginx::start(&ports);
    let base = format!("http://127.0.0.1:{}", nginx.port);

    let client = reqwest::Client::new();
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let errors = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let workers: Vec<_> = (0..16u64)
        .map(|w| {
            let (client, base, stop) = (client.clone(), base.clone(), stop.clone());
            let (ok, failed, errors) = (ok.clone(), failed.clone(), errors.clone());
            tokio::spawn(async move {
                let mut i = w;
                while !stop.load(Ordering::Relaxed) {
                    i += 16;
                    let url = format!("{base}{}", paths(i));
                    match client.get(&url).send().await {
                        Ok(r) if r.status().is_success() => {
                            let _ = r.bytes().await;
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(r) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            errors
                                .lock()
                                .unwrap()
                                .push(format!("{url}: {}", r.status()));
                        }
                        Err(e) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            errors.lock().unwrap().push(format!("{url}: {e}"));
                        }
                    }
                }
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_secs(2)).await;
    let before_kill = ok.load(Ordering::Relaxed);
    instances[1].kill().unwrap(); // SIGKILL
    instances[1].wait().unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after_kill = ok.load(Ordering::Relaxed);

    // Restart it on the same port; once nginx's fail_timeout has passed, it gets traffic again.
    instances[1] = instance(ports[1]);
    let killed = format!("127.0.0.1:{}", ports[1]);
    let mut rejoined = false;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        let r = client.get(format!("{base}/health")).send().await.unwrap();
        let upstream = r
            .headers()
            .get("x-upstream")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        if r.status() == 200 && upstream.ends_with(&killed) {
            rejoined = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let errors = errors.lock().unwrap().clone();
    assert!(
        errors.is_empty(),
        "{} of {} requests failed: {:?}",
        failed.load(Ordering::Relaxed),
        ok.load(Ordering::Relaxed),
        &errors[..errors.len().min(10)]
    );
    assert!(before_kill > 0 && after_kill > before_kill, "no load ran");
    assert!(rejoined, "the restarted instance never served again");
    for mut i in instances {
        let _ = i.kill();
        let _ = i.wait();
    }
    println!(
        "fleet: {} requests, none failed, across a SIGKILL and a restart",
        ok.load(Ordering::Relaxed)
    );
}
