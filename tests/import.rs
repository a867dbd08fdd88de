//! `import` against a real PostGIS: idempotent, atomic, keyed, and the binary's commands.
//!
//! Each test takes a fresh database. The real CalSim3 data is imported (twice, to show a second
//! run changes nothing), bad files are refused whole with the file and the feature index named
//! and the table left exactly as it was (row count and an md5 of every row), and features
//! without an id keep the id their key was given. The binary itself is run for `import`,
//! `migrate` and `--help`.

mod common;

use coeqwal_network_api::config::{Config, LayerConfig};
use coeqwal_network_api::import::{ImportSummary, import_paths};
use sqlx::{PgPool, Row};
use std::path::{Path, PathBuf};

const BIN: &str = env!("CARGO_BIN_EXE_coeqwal-network-api");

async fn scalar_i64(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query(sql)
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .try_get::<i64, _>(0)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

async fn count(pool: &PgPool, table: &str) -> i64 {
    scalar_i64(pool, &format!("SELECT count(*) FROM {table}")).await
}

/// Row count and an md5 of every row in id order: equal before and after means untouched.
async fn fingerprint(pool: &PgPool, table: &str) -> (i64, String) {
    let sql = format!(
        "SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t.id), '')) FROM {table} t"
    );
    let row = sqlx::query(&sql)
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    (row.get(0), row.get(1))
}

/// A folder under the system temp dir unique to this process and test.
fn temp_folder(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("coeqwal-import-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}

fn layers() -> Vec<LayerConfig> {
    Config::default().layers
}

async fn import(pool: &PgPool, paths: &[PathBuf]) -> anyhow::Result<Vec<ImportSummary>> {
    import_paths(pool, paths, &layers(), false).await
}

fn summary<'a>(done: &'a [ImportSummary], layer: &str) -> &'a ImportSummary {
    done.iter()
        .find(|s| s.layer == layer)
        .unwrap_or_else(|| panic!("no summary for {layer} in {done:?}"))
}

fn node(id: Option<i64>, code: Option<&str>, lon: f64, lat: f64) -> String {
    let id = id.map_or(String::new(), |i| format!("\"id\":{i},"));
    let code = code.map_or(String::new(), |c| format!("\"short_code\":\"{c}\","));
    format!(
        r#"{{"type":"Feature",{id}"geometry":{{"type":"Point","coordinates":[{lon},{lat}]}},"properties":{{{code}"name":"test node","type":"CH"}}}}"#
    )
}

fn collection(features: &[String]) -> String {
    format!(
        r#"{{"type":"FeatureCollection","name":"nodes","features":[{}]}}"#,
        features.join(",")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_real_data_twice_is_idempotent() {
    let dir = common::calsim3_dir();
    let (_url, pool) = common::fresh_database("import_twice").await;

    let first = import(&pool, std::slice::from_ref(&dir))
        .await
        .unwrap_or_else(|e| panic!("first import of {}: {e:#}", dir.display()));
    for (layer, n) in [("nodes", 1400), ("arcs", 1291), ("demand_units", 257)] {
        let s = summary(&first, layer);
        assert_eq!(
            (s.inserted, s.updated),
            (n, 0),
            "first import of {layer}: {s:?}"
        );
    }
    let before = [
        fingerprint(&pool, "network_node").await,
        fingerprint(&pool, "network_arc").await,
        fingerprint(&pool, "demand_unit").await,
    ];

    let second = import(&pool, std::slice::from_ref(&dir))
        .await
        .unwrap_or_else(|e| panic!("second import of {}: {e:#}", dir.display()));
    assert_eq!(second.len(), 3, "second import: {second:?}");
    for (layer, n) in [("nodes", 1400), ("arcs", 1291), ("demand_units", 257)] {
        let s = summary(&second, layer);
        assert_eq!(
            s.inserted, 0,
            "second import inserted rows into {layer}: {s:?}"
        );
        assert_eq!(s.updated, n, "second import of {layer}: {s:?}");
    }
    for (table, n) in [
        ("network_node", 1400),
        ("network_arc", 1291),
        ("demand_unit", 257),
    ] {
        assert_eq!(
            count(&pool, table).await,
            n,
            "rows in {table} after two imports"
        );
    }
    let after = [
        fingerprint(&pool, "network_node").await,
        fingerprint(&pool, "network_arc").await,
        fingerprint(&pool, "demand_unit").await,
    ];
    assert_eq!(before, after, "a second import changed row contents");

    // Ids come from the file; keys sit on them.
    let code: String = sqlx::query("SELECT short_code FROM network_node WHERE id = 1")
        .fetch_one(&pool)
        .await
        .expect("node id 1 exists")
        .get(0);
    assert_eq!(code, "EMD001", "node id 1");
    let shasta = sqlx::query(
        "SELECT id, capacity_taf, node_type FROM network_node WHERE short_code = 'SHSTA'",
    )
    .fetch_one(&pool)
    .await
    .expect("SHSTA exists");
    assert_eq!(shasta.get::<i64, _>(0), 81, "id of SHSTA");
    assert_eq!(
        shasta.get::<Option<f64>, _>(1),
        Some(4552.0),
        "SHSTA capacity_taf"
    );
    assert_eq!(
        shasta.get::<Option<String>, _>(2).as_deref(),
        Some("STR"),
        "SHSTA node_type (from `type`)"
    );
    assert_eq!(
        count(&pool, "network_node WHERE capacity_taf IS NOT NULL").await,
        63,
        "nodes with a capacity_taf"
    );
    assert_eq!(
        count(&pool, "network_node WHERE node_type = 'STR'").await,
        68,
        "nodes of type STR (63 of the nodes carry reservoir fields; 68 have type STR)"
    );

    // Invalid source polygons are stored as given; the generated copy is valid for all.
    assert_eq!(
        count(&pool, "demand_unit WHERE NOT ST_IsValid(geom)").await,
        6,
        "demand units stored with invalid geometry"
    );
    assert_eq!(
        count(
            &pool,
            "demand_unit WHERE geom_valid IS NOT NULL AND ST_IsValid(geom_valid) AND NOT ST_IsEmpty(geom_valid)"
        )
        .await,
        257,
        "demand units whose geom_valid is valid"
    );
    // Arcs run from their from_node to their to_node.
    assert_eq!(
        count(
            &pool,
            "network_arc a JOIN network_node f ON f.short_code = a.from_node \
             JOIN network_node t ON t.short_code = a.to_node \
             WHERE NOT (ST_Equals(ST_StartPoint(a.geom), f.geom) AND ST_Equals(ST_EndPoint(a.geom), t.geom))"
        )
        .await,
        0,
        "arcs whose ends are not their from/to nodes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_refuses_bad_files_and_changes_nothing() {
    let (_url, pool) = common::postgis_with(&common::calsim3_dir(), "import_bad").await;
    let before_nodes = fingerprint(&pool, "network_node").await;
    let before_arcs = fingerprint(&pool, "network_arc").await;
    assert_eq!(before_nodes.0, 1400);

    // Features 0 and 1 are fine (an update of node 1 and a new node): they must not land.
    let good0 = node(Some(1), Some("EMD001"), -121.0, 38.0);
    let good1 = node(Some(5001), Some("TESTOK"), -121.1, 38.1);
    let line = r#"{"type":"Feature","id":5002,"geometry":{"type":"LineString","coordinates":[[-121,38],[-121.2,38.2]]},"properties":{"short_code":"TESTLINE"}}"#.to_string();
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "malformed",
            r#"{"type":"FeatureCollection","features":[{"type":"Feature","#.to_string(),
            vec!["JSON"],
        ),
        (
            "linestring",
            collection(&[good0.clone(), good1.clone(), line]),
            vec!["feature 2", "LineString"],
        ),
        (
            "duplicate",
            collection(&[
                good0.clone(),
                good1.clone(),
                node(Some(5003), Some("TESTOK"), -121.2, 38.2),
            ]),
            vec!["feature 2", "duplicate", "TESTOK"],
        ),
        (
            "duplicate_existing_code_in_file",
            collection(&[
                good0.clone(),
                good1.clone(),
                node(Some(5004), Some("EMD001"), -121.3, 38.3),
            ]),
            vec!["feature 2", "EMD001"],
        ),
        (
            "missing_key",
            collection(&[
                good0.clone(),
                good1.clone(),
                node(Some(5005), None, -121.4, 38.4),
            ]),
            vec!["feature 2", "short_code"],
        ),
    ];
    let mut failures = Vec::new();
    for (name, text, wanted) in cases {
        let dir = temp_folder(&format!("bad-{name}"));
        let path = write(&dir, "nodes.geojson", &text);
        // Both as a folder and as a file.
        for arg in [dir.clone(), path.clone()] {
            match import(&pool, std::slice::from_ref(&arg)).await {
                Ok(done) => {
                    failures.push(format!("{name} ({}): accepted: {done:?}", arg.display()))
                }
                Err(e) => {
                    let msg = format!("{e:#}");
                    if !msg.contains(&path.display().to_string()) {
                        failures.push(format!(
                            "{name}: error does not name the file {}: {msg}",
                            path.display()
                        ));
                    }
                    for w in &wanted {
                        if !msg.contains(w) {
                            failures.push(format!("{name}: error lacks {w:?}: {msg}"));
                        }
                    }
                }
            }
            let after = fingerprint(&pool, "network_node").await;
            if after != before_nodes {
                failures.push(format!(
                    "{name} ({}): network_node changed: {before_nodes:?} -> {after:?}",
                    arg.display()
                ));
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    // A file the reader accepts but the database refuses half-way (two disjoint lines cannot be
    // merged into the table's LineString): the transaction must leave nothing behind.
    let dir = temp_folder("bad-arcs-db");
    let arc = |id: i64, code: &str, coords: &str, kind: &str| {
        format!(
            r#"{{"type":"Feature","id":{id},"geometry":{{"type":"{kind}","coordinates":{coords}}},"properties":{{"short_code":"{code}","from_node":"A","to_node":"B"}}}}"#
        )
    };
    let text = format!(
        r#"{{"type":"FeatureCollection","name":"arcs","features":[{},{},{}]}}"#,
        arc(1, "C_TEST_A", "[[-121,38],[-121.1,38.1]]", "LineString"),
        arc(9001, "C_TEST_B", "[[-121,38],[-121.2,38.2]]", "LineString"),
        arc(
            9002,
            "C_TEST_C",
            "[[[-121,38],[-121.1,38.1]],[[-120,37],[-120.1,37.1]]]",
            "MultiLineString"
        ),
    );
    let path = write(&dir, "arcs.geojson", &text);
    match import(&pool, std::slice::from_ref(&path)).await {
        Ok(done) => failures.push(format!(
            "arcs with an unmergeable MultiLineString: accepted: {done:?}"
        )),
        Err(e) => {
            let msg = format!("{e:#}");
            if !msg.contains(&path.display().to_string()) || !msg.contains("feature 2") {
                failures.push(format!(
                    "arcs refused by the database: error should name {} and feature 2: {msg}",
                    path.display()
                ));
            }
        }
    }
    let after = fingerprint(&pool, "network_arc").await;
    if after != before_arcs {
        failures.push(format!(
            "arcs refused half-way: network_arc changed: {before_arcs:?} -> {after:?}"
        ));
    }
    let _ = std::fs::remove_dir_all(&dir);

    assert!(
        failures.is_empty(),
        "{} failure(s):\n  - {}",
        failures.len(),
        failures.join("\n  - ")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_without_id_takes_next_free_id_and_keeps_it() {
    let (_url, pool) = common::postgis_with(&common::calsim3_dir(), "import_noid").await;
    let max_before = scalar_i64(&pool, "SELECT max(id) FROM network_node").await;
    let dir = temp_folder("noid");
    let path = write(
        &dir,
        "nodes.geojson",
        &collection(&[node(None, Some("TESTNOID"), -121.5, 38.5)]),
    );

    let done = import(&pool, std::slice::from_ref(&path))
        .await
        .unwrap_or_else(|e| panic!("import {}: {e:#}", path.display()));
    assert_eq!(
        (done[0].inserted, done[0].updated),
        (1, 0),
        "first import of {}: {done:?}",
        path.display()
    );
    let id = scalar_i64(
        &pool,
        "SELECT id FROM network_node WHERE short_code = 'TESTNOID'",
    )
    .await;
    assert_eq!(
        id,
        max_before + 1,
        "a feature without id takes the next free id"
    );
    assert_eq!(count(&pool, "network_node").await, 1401);

    // Again, still without an id: the key finds the same row.
    let done = import(&pool, std::slice::from_ref(&path))
        .await
        .unwrap_or_else(|e| panic!("re-import {}: {e:#}", path.display()));
    assert_eq!(
        (done[0].inserted, done[0].updated),
        (0, 1),
        "re-import of {}: {done:?}",
        path.display()
    );
    let again = scalar_i64(
        &pool,
        "SELECT id FROM network_node WHERE short_code = 'TESTNOID'",
    )
    .await;
    assert_eq!(again, id, "re-importing a feature without id moved it");
    assert_eq!(
        count(&pool, "network_node").await,
        1401,
        "re-import added a row"
    );
    // And the real data is untouched: SHSTA still has 81.
    assert_eq!(
        scalar_i64(
            &pool,
            "SELECT id FROM network_node WHERE short_code = 'SHSTA'"
        )
        .await,
        81
    );
    let _ = std::fs::remove_dir_all(&dir);
}

async fn run_binary(args: &[&str], database_url: Option<&str>) -> std::process::Output {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(args)
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn");
    if let Some(url) = database_url {
        cmd.env("DATABASE_URL", url);
    }
    cmd.output()
        .await
        .unwrap_or_else(|e| panic!("run {BIN} {args:?}: {e}"))
}

fn describe(args: &[&str], out: &std::process::Output) -> String {
    format!(
        "{BIN} {args:?}: exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_import_prints_one_line_summary() {
    let (url, pool) = common::fresh_database("import_bin").await;
    let dir = common::calsim3_dir();
    let dir_text = dir.display().to_string();
    let args = ["import", dir_text.as_str()];
    let out = run_binary(&args, Some(&url)).await;
    assert!(out.status.success(), "{}", describe(&args, &out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "one summary line: {}",
        describe(&args, &out)
    );
    assert!(
        lines[0].contains("imported 3 file(s)"),
        "{}",
        describe(&args, &out)
    );
    assert!(
        !stdout.contains("postgres://"),
        "the summary must not echo the database URL: {stdout}"
    );
    for (table, n) in [
        ("network_node", 1400),
        ("network_arc", 1291),
        ("demand_unit", 257),
    ] {
        assert_eq!(
            count(&pool, table).await,
            n,
            "rows in {table} after the binary's import"
        );
    }

    // Without a database the command says what it needs and fails.
    let out = run_binary(&args, None).await;
    assert!(!out.status.success(), "{}", describe(&args, &out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("DATABASE_URL"),
        "{}",
        describe(&args, &out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_migrate_on_empty_database() {
    let url = common::empty_database("migrate_bin").await;
    let args = ["migrate"];
    let out = run_binary(&args, Some(&url)).await;
    assert!(out.status.success(), "{}", describe(&args, &out));
    // Twice is fine: migrations are recorded.
    let out = run_binary(&args, Some(&url)).await;
    assert!(
        out.status.success(),
        "second run: {}",
        describe(&args, &out)
    );

    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .expect("connect to the migrated database");
    for table in ["network_node", "network_arc", "demand_unit"] {
        assert_eq!(count(&pool, table).await, 0, "{table} exists and is empty");
    }
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_help_mentions_database_url() {
    for sub in ["serve", "migrate", "import"] {
        let args = [sub, "--help"];
        let out = run_binary(&args, None).await;
        assert!(out.status.success(), "{}", describe(&args, &out));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("DATABASE_URL"),
            "{}",
            describe(&args, &out)
        );
    }
}
