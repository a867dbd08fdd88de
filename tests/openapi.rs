//! The OpenAPI description: it lists exactly the (method, path) pairs the router registers
//! (from `app::route_list`, the table the router is built from), every documented path
//! answers, and `schemathesis` (a real OpenAPI fuzzer, from PyPI) finds no 5xx and no answer
//! that breaks the description, against PostGIS.

mod common;

use coeqwal_network_api::app::{AppState, route_list};
use coeqwal_network_api::config::Config;
use std::collections::BTreeSet;

/// Documented paths the router matches with another pattern, (documented, routed): axum cannot
/// route a parameter followed by a suffix in one segment, so these handlers read the suffix
/// themselves, and `/web` is a catch-all over the files of the web folder. Every entry must be
/// in use, so none outlives its route.
const ROUTED_AS: &[(&str, &str)] = &[
    ("/tiles/{layers}.json", "/tiles/{name}"),
    (
        "/tiles/{layers}/{z}/{x}/{y}.{format}",
        "/tiles/{layers}/{z}/{x}/{y}",
    ),
    ("/styles/{name}.json", "/styles/{name}"),
    ("/web/{path}", "/web/{*path}"),
];

/// The methods of an OpenAPI path item.
const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

#[tokio::test]
async fn the_description_lists_every_route_of_the_router_and_each_answers() {
    let source = common::memory_source(&common::sample_dir());
    let routed: BTreeSet<(String, String)> =
        route_list(&AppState::new(Config::default(), source.clone()))
            .into_iter()
            .collect();
    let base = common::start_server(source, Config::default()).await;
    let doc: serde_json::Value = reqwest::get(format!("{base}/api/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1."));
    assert_eq!(doc["servers"][0]["url"], base);
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let path = ROUTED_AS
            .iter()
            .find(|(d, _)| d == path)
            .map_or(path.as_str(), |(_, r)| r);
        for method in item.as_object().unwrap().keys() {
            if METHODS.contains(&method.as_str()) {
                documented.insert((method.to_uppercase(), path.to_string()));
            }
        }
    }
    for (documented_as, routed_as) in ROUTED_AS {
        assert!(
            doc["paths"].get(documented_as).is_some() && routed.iter().any(|(_, p)| p == routed_as),
            "ROUTED_AS has a stale entry {documented_as} -> {routed_as}"
        );
    }
    assert_eq!(
        documented.difference(&routed).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "documented but not routed"
    );
    assert_eq!(
        routed.difference(&documented).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "routed but not documented"
    );
    assert_eq!(
        doc["paths"]["/api/batch"]["post"]["tags"][0],
        "compatibility"
    );

    // Every documented GET, filled with its parameters' examples, reaches a handler (no
    // "no route here") and answers 2xx on the sample network.
    let client = reqwest::Client::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let Some(op) = item.get("get") else { continue };
        let mut url = path.clone();
        let mut query = Vec::new();
        for p in op["parameters"].as_array().into_iter().flatten() {
            let name = p["name"].as_str().unwrap();
            let value = match &p["example"] {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => continue,
                other => other.to_string(),
            };
            if p["in"] == "path" {
                url = url.replace(&format!("{{{name}}}"), &value);
            } else if p["required"] == true {
                query.push(format!("{name}={value}"));
            }
        }
        assert!(
            !url.contains('{'),
            "{path}: a path parameter has no example"
        );
        let full = if query.is_empty() {
            format!("{base}{url}")
        } else {
            format!("{base}{url}?{}", query.join("&"))
        };
        let r = client.get(&full).send().await.unwrap();
        let status = r.status();
        let body = r.text().await.unwrap();
        // The viewer's files and style come from web/ and styles/, which a checkout has.
        assert!(
            status.is_success(),
            "{full}: {status} {}",
            &body[..body.len().min(300)]
        );
    }
}

#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_answer_outside_the_description() {
    let (_url, pool) = common::postgis_with(&common::sample_dir(), "openapi").await;
    let base = common::start_server(common::postgis_source(pool), Config::default()).await;
    let exe = std::env::var("SCHEMATHESIS").unwrap_or_else(|_| "schemathesis".into());
    let max_time = std::env::var("SCHEMATHESIS_MAX_TIME").unwrap_or_else(|_| "60".into());
    let out = tokio::process::Command::new(&exe)
        .args([
            "run",
            &format!("{base}/api/openapi.json"),
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            "--max-time",
            &max_time,
            "--seed",
            "20261203",
            // One worker: with two, schemathesis 4.32 sometimes fails inside its own code
            // (a KeyError from concurrent strategy building), not in anything of ours.
            "--workers",
            "1",
            "--no-color",
        ])
        .env("SCHEMATHESIS_HOOKS", "")
        .output()
        .await
        .unwrap_or_else(|e| {
            panic!("cannot run {exe} ({e}); install it with: python3 -m pip install schemathesis")
        });
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
