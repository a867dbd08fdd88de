//! Import safety: malformed files never change the database, and the error says which feature.
//!
//! `tests/import.rs` covers bad JSON, a LineString among nodes, duplicate and missing keys on
//! top of the CalSim3 data, checking `network_node` only. This file starts from the bundled
//! sample instead, fingerprints all three tables and the list of tables, and covers what that
//! file does not: a Polygon among nodes, wrong geometry in the other layers, features without
//! geometry, ids and properties of the wrong type, numbers JSON cannot hold, nesting deep
//! enough to overflow a naive parser, NUL in a key (accepted by the reader, refused by
//! PostgreSQL half-way through the transaction), bytes that are not UTF-8, a bad file after a
//! good one in a folder, and the binary's own message and exit status.

mod common;

use coeqwal_network_api::config::Config;
use coeqwal_network_api::import::import_paths;
use sqlx::{PgPool, Row};
use std::path::{Path, PathBuf};

const BIN: &str = env!("CARGO_BIN_EXE_coeqwal-network-api");

/// Row count and md5 of every row of the three tables, and the tables of the database.
async fn fingerprint(pool: &PgPool) -> Vec<String> {
    let mut out = Vec::new();
    for table in ["network_node", "network_arc", "demand_unit"] {
        let sql = format!(
            "SELECT '{table} ' || count(*)::text || ' ' || \
               coalesce(md5(string_agg(t::text, ',' ORDER BY t.id)), '-') FROM {table} t"
        );
        let row = sqlx::query(&sql)
            .fetch_one(pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        out.push(row.get::<String, _>(0));
    }
    let row = sqlx::query(
        "SELECT count(*)::text || ' tables: ' || coalesce(string_agg(schemaname || '.' || tablename, \
           ',' ORDER BY schemaname, tablename), '') FROM pg_tables \
         WHERE schemaname NOT IN ('pg_catalog', 'information_schema')",
    )
    .fetch_one(pool)
    .await
    .expect("pg_tables");
    out.push(row.get::<String, _>(0));
    out
}

/// A folder under the system temp dir unique to this process and test.
fn temp_folder(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("coeqwal-safety-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}

fn collection(features: &[String]) -> String {
    format!(
        r#"{{"type":"FeatureCollection","features":[{}]}}"#,
        features.join(",")
    )
}

/// A feature with an id, a geometry and properties, all given as JSON text.
fn feature(id: &str, geometry: &str, properties: &str) -> String {
    format!(r#"{{"type":"Feature","id":{id},"geometry":{geometry},"properties":{properties}}}"#)
}

fn point(lon: f64, lat: f64) -> String {
    format!(r#"{{"type":"Point","coordinates":[{lon},{lat}]}}"#)
}

const POLYGON: &str =
    r#"{"type":"Polygon","coordinates":[[[-121,38],[-121.1,38],[-121.1,38.1],[-121,38]]]}"#;
const LINE: &str = r#"{"type":"LineString","coordinates":[[-121,38],[-121.2,38.2]]}"#;

/// Two good nodes (an update of sample node 1 and a new node), so a refusal at feature 2 shows
/// that what came before it did not land either.
fn good_nodes() -> Vec<String> {
    vec![
        feature(
            "1",
            &point(-121.0, 38.0),
            r#"{"short_code":"SHSTA","name":"moved","type":"STR"}"#,
        ),
        feature(
            "7001",
            &point(-121.1, 38.1),
            r#"{"short_code":"SAFEOK","name":"new","type":"CH"}"#,
        ),
    ]
}

fn nodes_with(third: String) -> Vec<u8> {
    let mut f = good_nodes();
    f.push(third);
    collection(&f).into_bytes()
}

/// (case, file name, contents, what the error must say besides the file's path)
fn malformed() -> Vec<(&'static str, &'static str, Vec<u8>, Vec<&'static str>)> {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    vec![
        (
            "truncated_json",
            "nodes.geojson",
            br#"{"type":"FeatureCollection","features":[{"type":"Feature","#.to_vec(),
            vec!["JSON", "line 1"],
        ),
        (
            "trailing_garbage",
            "nodes.geojson",
            format!("{}}}}}", collection(&good_nodes())).into_bytes(),
            vec!["JSON"],
        ),
        ("empty_file", "nodes.geojson", Vec::new(), vec!["JSON"]),
        (
            "not_a_collection",
            "nodes.geojson",
            b"[1,2,3]".to_vec(),
            vec!["FeatureCollection"],
        ),
        (
            "polygon_among_nodes",
            "nodes.geojson",
            nodes_with(feature("7002", POLYGON, r#"{"short_code":"SAFEPOLY"}"#)),
            vec!["feature 2", "Polygon", "SAFEPOLY"],
        ),
        (
            "multipoint_among_nodes",
            "nodes.geojson",
            nodes_with(feature(
                "7003",
                r#"{"type":"MultiPoint","coordinates":[[-121,38],[-122,39]]}"#,
                r#"{"short_code":"SAFEMULTI"}"#,
            )),
            vec!["feature 2", "MultiPoint", "SAFEMULTI"],
        ),
        (
            "point_among_arcs",
            "arcs.geojson",
            collection(&[
                feature(
                    "1",
                    LINE,
                    r#"{"short_code":"C_SAFE_A","from_node":"SHSTA","to_node":"KSWCK"}"#,
                ),
                feature(
                    "9001",
                    &point(-121.0, 38.0),
                    r#"{"short_code":"C_SAFE_B","from_node":"SHSTA","to_node":"KSWCK"}"#,
                ),
            ])
            .into_bytes(),
            vec!["feature 1", "Point", "C_SAFE_B"],
        ),
        (
            "line_among_demand_units",
            "demand_units.geojson",
            collection(&[feature("1", LINE, r#"{"du_id":"SAFE_DU"}"#)]).into_bytes(),
            vec!["feature 0", "LineString"],
        ),
        (
            "missing_key",
            "nodes.geojson",
            nodes_with(feature(
                "7004",
                &point(-121.2, 38.2),
                r#"{"name":"no code"}"#,
            )),
            vec!["feature 2", "short_code"],
        ),
        (
            "empty_key",
            "nodes.geojson",
            nodes_with(feature(
                "7005",
                &point(-121.2, 38.2),
                r#"{"short_code":""}"#,
            )),
            vec!["feature 2", "short_code"],
        ),
        (
            "duplicate_key",
            "nodes.geojson",
            nodes_with(feature(
                "7006",
                &point(-121.2, 38.2),
                r#"{"short_code":"SAFEOK"}"#,
            )),
            vec!["feature 2", "duplicate", "SAFEOK", "feature 1"],
        ),
        (
            "duplicate_id",
            "nodes.geojson",
            nodes_with(feature(
                "7001",
                &point(-121.2, 38.2),
                r#"{"short_code":"SAFEDUPID"}"#,
            )),
            vec!["feature 2", "duplicate id", "7001"],
        ),
        (
            "no_geometry",
            "nodes.geojson",
            nodes_with(feature("7007", "null", r#"{"short_code":"SAFENOGEOM"}"#)),
            vec!["feature 2", "geometry", "SAFENOGEOM"],
        ),
        (
            "bad_coordinates",
            "nodes.geojson",
            nodes_with(feature(
                "7008",
                r#"{"type":"Point","coordinates":"here"}"#,
                r#"{"short_code":"SAFEBADXY"}"#,
            )),
            vec!["feature 2", "geometry", "SAFEBADXY"],
        ),
        (
            "fractional_id",
            "nodes.geojson",
            nodes_with(feature(
                "1.5",
                &point(-121.2, 38.2),
                r#"{"short_code":"SAFEFRAC"}"#,
            )),
            vec!["feature 2", "id", "SAFEFRAC"],
        ),
        (
            "huge_id",
            "nodes.geojson",
            nodes_with(feature(
                "99999999999999999999999",
                &point(-121.2, 38.2),
                r#"{"short_code":"SAFEHUGE"}"#,
            )),
            vec!["feature 2", "id", "SAFEHUGE"],
        ),
        (
            "property_of_the_wrong_type",
            "nodes.geojson",
            nodes_with(feature(
                "7009",
                &point(-121.2, 38.2),
                r#"{"short_code":"SAFETYPE","capacity_taf":"lots"}"#,
            )),
            vec!["feature 2", "capacity_taf", "SAFETYPE"],
        ),
        (
            "number_json_cannot_hold",
            "nodes.geojson",
            nodes_with(feature(
                "7010",
                r#"{"type":"Point","coordinates":[1e400,38]}"#,
                r#"{"short_code":"SAFEINF"}"#,
            )),
            vec!["JSON"],
        ),
        (
            "deep_nesting",
            "nodes.geojson",
            nodes_with(feature(
                "7011",
                &point(-121.2, 38.2),
                &format!(r#"{{"short_code":"SAFEDEEP","name":{deep}}}"#),
            )),
            vec!["JSON"],
        ),
        (
            "nul_in_key",
            "nodes.geojson",
            nodes_with(feature(
                "7012",
                &point(-121.2, 38.2),
                r#"{"short_code":"SAFE\u0000NUL"}"#,
            )),
            vec!["feature 2"],
        ),
        (
            "not_utf8",
            "nodes.geojson",
            {
                let mut b = collection(&good_nodes()).into_bytes();
                b.splice(60..60, [0xff, 0xfe, 0xc0]);
                b
            },
            vec!["UTF-8"],
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_files_are_refused_naming_the_feature_and_change_nothing() {
    let (_url, pool) = common::postgis_with(&common::sample_dir(), "import_safety").await;
    let before = fingerprint(&pool).await;
    assert!(
        before[0].starts_with("network_node ") && !before[0].starts_with("network_node 0 "),
        "the sample is imported: {before:?}"
    );
    let layers = Config::default().layers;
    let mut failures = Vec::new();
    for (case, name, bytes, wanted) in malformed() {
        let dir = temp_folder(case);
        let path = write(&dir, name, &bytes);
        match import_paths(&pool, std::slice::from_ref(&path), &layers, false).await {
            Ok(done) => failures.push(format!("{case}: accepted: {done:?}")),
            Err(e) => {
                let msg = format!("{e:#}");
                if !msg.contains(&path.display().to_string()) {
                    failures.push(format!("{case}: the error does not name the file: {msg}"));
                }
                for w in &wanted {
                    if !msg.contains(w) {
                        failures.push(format!("{case}: the error lacks {w:?}: {msg}"));
                    }
                }
                if msg.len() > 2000 {
                    failures.push(format!(
                        "{case}: a {}-byte error echoes the file",
                        msg.len()
                    ));
                }
            }
        }
        let after = fingerprint(&pool).await;
        if after != before {
            failures.push(format!(
                "{case}: the database changed: {before:?} -> {after:?}"
            ));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    assert!(
        failures.is_empty(),
        "{} failure(s):\n  - {}",
        failures.len(),
        failures.join("\n  - ")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_file_after_good_ones_in_a_folder_leaves_the_database_as_it_was() {
    let (_url, pool) = common::postgis_with(&common::sample_dir(), "import_safety_dir").await;
    let before = fingerprint(&pool).await;
    // A good nodes file that changes the data (SHSTA moved, a new node), then arcs with a
    // Polygon after a good arc: the import is all or nothing, so neither file lands.
    let dir = temp_folder("folder");
    write(&dir, "nodes.geojson", collection(&good_nodes()).as_bytes());
    let arcs = collection(&[
        feature(
            "1",
            LINE,
            r#"{"short_code":"C_SAFE_A","from_node":"SHSTA","to_node":"KSWCK"}"#,
        ),
        feature(
            "9002",
            POLYGON,
            r#"{"short_code":"C_SAFE_POLY","from_node":"SHSTA","to_node":"KSWCK"}"#,
        ),
    ]);
    let arcs_path = write(&dir, "arcs.geojson", arcs.as_bytes());
    let err = import_paths(
        &pool,
        std::slice::from_ref(&dir),
        &Config::default().layers,
        false,
    )
    .await
    .expect_err("a Polygon among arcs is refused");
    let msg = format!("{err:#}");
    for w in [
        arcs_path.display().to_string().as_str(),
        "feature 1",
        "Polygon",
        "C_SAFE_POLY",
    ] {
        assert!(msg.contains(w), "the error lacks {w:?}: {msg}");
    }
    assert_eq!(fingerprint(&pool).await, before, "the database changed");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_refuses_a_malformed_file_with_the_feature_and_a_failing_exit() {
    let (url, pool) = common::postgis_with(&common::sample_dir(), "import_safety_bin").await;
    let before = fingerprint(&pool).await;
    let dir = temp_folder("binary");
    let path = write(
        &dir,
        "nodes.geojson",
        &nodes_with(feature("7020", POLYGON, r#"{"short_code":"SAFEBIN"}"#)),
    );
    let out = tokio::process::Command::new(BIN)
        .arg("import")
        .arg(&path)
        .env("DATABASE_URL", &url)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .expect("run the binary");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "accepted: {stderr}");
    for w in [
        path.display().to_string().as_str(),
        "feature 2",
        "SAFEBIN",
        "Polygon",
    ] {
        assert!(stderr.contains(w), "stderr lacks {w:?}: {stderr}");
    }
    assert!(
        !stderr.contains(&url),
        "the error must not echo the database URL: {stderr}"
    );
    assert_eq!(fingerprint(&pool).await, before, "the database changed");
    let _ = std::fs::remove_dir_all(&dir);
}
