//! The real clients: a headless Chromium running MapLibre GL JS on the viewer, GDAL's OAPIF and
//! MVT drivers, and MapLibre's own style validator. `scripts/test` installs what they need
//! (Debian's `chromium` and `gdal-bin`, `web/node_modules` from the lock file).

mod common;

use coeqwal_network_api::config::Config;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use tokio::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs a client program to the end; panics with its output when it fails.
async fn run(cmd: &mut Command, what: &str) -> String {
    run_both(cmd, what).await.0
}

/// [`run`], answering stdout and stderr.
async fn run_both(cmd: &mut Command, what: &str) -> (String, String) {
    let out = cmd
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {what} ({e}); scripts/test installs it"));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{what} failed:\n{stdout}\n{stderr}");
    (stdout, stderr)
}

async fn browser(base: &str, expect: &str) {
    let out = run(
        Command::new("node")
            .arg(root().join("tests/browser/viewer.mjs"))
            .env("BASE_URL", base)
            .env("EXPECT", expect),
        "the browser test (node tests/browser/viewer.mjs)",
    )
    .await;
    let summary: Value = serde_json::from_str(out.lines().last().unwrap_or("{}")).unwrap();
    assert_eq!(summary["ok"], true, "{out}");
}

#[tokio::test]
async fn the_viewer_runs_in_chromium_on_the_embedded_sample() {
    let source = std::sync::Arc::new(
        coeqwal_network_api::source::memory::MemorySource::sample(&Config::default().layers)
            .unwrap(),
    );
    let base = common::start_server(source, Config::default()).await;
    browser(&base, "sample").await;
}

#[tokio::test]
async fn the_viewer_runs_in_chromium_on_postgis_with_calsim3() {
    let (_url, pool) = common::postgis_with(&common::calsim3_dir(), "browser").await;
    let base = common::start_server(common::postgis_source(pool), Config::default()).await;
    browser(&base, "calsim3").await;
}

/// `Feature Count: N` of each layer in `ogrinfo -so` output.
fn feature_counts(ogrinfo: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let mut layer = None;
    for line in ogrinfo.lines() {
        if let Some(name) = line.strip_prefix("Layer name: ") {
            layer = Some(name.trim().to_string());
        }
        if let (Some(n), Some(l)) = (line.strip_prefix("Feature Count: "), &layer) {
            out.insert(l.clone(), n.trim().parse().unwrap());
        }
    }
    out
}

#[tokio::test]
async fn gdal_reads_every_collection_and_tile() {
    let (_url, pool) = common::postgis_with(&common::calsim3_dir(), "gdal").await;
    let base = common::start_server(common::postgis_source(pool), Config::default()).await;

    // OGC API - Features: the three collections with the data's counts.
    let info = run(
        Command::new("ogrinfo")
            .args(["-ro", "-so", "-al"])
            .arg(format!("OAPIF:{base}")),
        "ogrinfo",
    )
    .await;
    let counts = feature_counts(&info);
    assert_eq!(
        counts,
        BTreeMap::from([
            ("arcs".to_string(), 1291),
            ("demand_units".to_string(), 257),
            ("nodes".to_string(), 1400),
        ]),
        "{info}"
    );

    // ogr2ogr pages through every node into a GeoPackage, 200 a page (GDAL's OAPIF open option
    // PAGE_SIZE), so it must follow the `next` links; CPL_DEBUG logs each page it fetches.
    let dir = std::env::temp_dir().join(format!("coeqwal-gdal-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let gpkg = dir.join("nodes.gpkg");
    let _ = std::fs::remove_file(&gpkg);
    let (_, log) = run_both(
        Command::new("ogr2ogr")
            .args(["-f", "GPKG"])
            .args(["-oo", "PAGE_SIZE=200"])
            .arg(&gpkg)
            .arg(format!("OAPIF:{base}"))
            .arg("nodes")
            .env("CPL_DEBUG", "ON"),
        "ogr2ogr",
    )
    .await;
    let pages: BTreeSet<&str> = log
        .lines()
        .filter_map(|l| l.split("Fetch(").nth(1))
        .filter(|url| url.contains("/collections/nodes/items"))
        .collect();
    assert!(
        pages.iter().all(|url| url.contains("limit=200"))
            && pages.iter().any(|url| url.contains("offset=1200")),
        "ogr2ogr did not page 200 at a time through 1400 nodes: {pages:?}"
    );
    let copied = run(
        Command::new("ogrinfo")
            .args(["-ro", "-so"])
            .arg(&gpkg)
            .arg("nodes"),
        "ogrinfo on the GeoPackage",
    )
    .await;
    assert_eq!(
        feature_counts(&copied).get("nodes"),
        Some(&1400),
        "{copied}"
    );
    let _ = std::fs::remove_dir_all(&dir);

    // The MVT driver opens a tile URL and lists the layers with their fields.
    let tile = run(
        Command::new("ogrinfo")
            .args(["-ro", "-so", "-al"])
            .arg(format!(
                "MVT:{base}/tiles/nodes,arcs,demand_units/8/41/98.pbf"
            )),
        "ogrinfo on a tile",
    )
    .await;
    for (layer, field) in [
        ("nodes", "short_code"),
        ("arcs", "arc_type"),
        ("demand_units", "du_id"),
    ] {
        assert!(tile.contains(&format!("Layer name: {layer}")), "{tile}");
        assert!(tile.contains(&format!("{field}: String")), "{tile}");
    }
}

#[tokio::test]
async fn the_style_passes_maplibres_validator() {
    run(
        Command::new(root().join("web/node_modules/.bin/gl-style-validate"))
            .arg(root().join("styles/calsim.json")),
        "gl-style-validate",
    )
    .await;
}

/// Property names an expression or legacy filter reads (`["get", p]`, `["has", p]`, `{p}`).
fn properties_read(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Array(items) => {
            if let (Some(Value::String(op)), Some(Value::String(p))) = (items.first(), items.get(1))
                && (op == "get" || op == "has" || op == "!has")
                && items.len() == 2
            {
                out.insert(p.clone());
            }
            items.iter().for_each(|i| properties_read(i, out));
        }
        Value::Object(map) => map.values().for_each(|i| properties_read(i, out)),
        Value::String(s) => {
            let mut rest = s.as_str();
            while let (Some(a), Some(b)) = (rest.find('{'), rest.find('}')) {
                if a < b {
                    out.insert(rest[a + 1..b].to_string());
                }
                rest = &rest[b + 1..];
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn every_layer_and_property_the_style_reads_is_in_the_tilejson() {
    let base = common::start_server(
        common::memory_source(&common::sample_dir()),
        Config::default(),
    )
    .await;
    let style: Value = reqwest::get(format!("{base}/styles/calsim.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let source_url = style["sources"]["calsim"]["url"].as_str().unwrap();
    assert!(
        source_url.starts_with(&base),
        "{source_url} is not on this server"
    );
    let tilejson: Value = reqwest::get(source_url)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let fields: BTreeMap<String, BTreeSet<String>> = tilejson["vector_layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["id"].as_str().unwrap().to_string(),
                l["fields"].as_object().unwrap().keys().cloned().collect(),
            )
        })
        .collect();
    let mut checked = 0;
    for layer in style["layers"].as_array().unwrap() {
        let Some(source_layer) = layer["source-layer"].as_str() else {
            continue;
        };
        let known = fields.get(source_layer).unwrap_or_else(|| {
            panic!(
                "style layer {} reads unknown source-layer {source_layer}",
                layer["id"]
            )
        });
        let mut read = BTreeSet::new();
        for part in ["filter", "paint", "layout"] {
            if let Some(v) = layer.get(part) {
                // `text-font` names fonts, not properties.
                let mut v = v.clone();
                if let Some(l) = v.as_object_mut() {
                    l.remove("text-font");
                }
                properties_read(&v, &mut read);
            }
        }
        for p in read {
            assert!(
                known.contains(&p),
                "style layer {} reads {p:?}, which {source_layer} does not have ({known:?})",
                layer["id"]
            );
            checked += 1;
        }
    }
    assert!(checked >= 5, "the style reads only {checked} properties");
}
