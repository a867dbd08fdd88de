//! Shared test harness: the real data, a fresh PostGIS database per test, a real HTTP server
//! on a free port, and an independent MVT decoder (`mvt-reader`, not our encoder).
#![allow(dead_code)]

use coeqwal_network_api::app::{AppState, router};
use coeqwal_network_api::config::Config;
use coeqwal_network_api::source::Source;
use coeqwal_network_api::source::memory::MemorySource;
use coeqwal_network_api::source::postgis::PostgisSource;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// The real CalSim3 data: `CALSIM3_DATA` or `../shared/data/calsim3`.
pub fn calsim3_dir() -> PathBuf {
    let dir = std::env::var("CALSIM3_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/calsim3")
        });
    assert!(
        dir.join("nodes.geojson").is_file(),
        "CalSim3 data not found at {} (set CALSIM3_DATA)",
        dir.display()
    );
    dir
}

/// The sample network shipped in the binary, as files.
pub fn sample_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/sample")
}

/// The admin URL every PostGIS test starts from.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| {
        panic!("DATABASE_URL is not set: run the tests with scripts/test, which starts a PostGIS")
    })
}

fn with_database(url: &str, db: &str) -> String {
    let (head, tail) = match url.split_once('?') {
        Some((h, t)) => (h, format!("?{t}")),
        None => (url, String::new()),
    };
    let cut = head.rfind('/').expect("DATABASE_URL has a path");
    format!("{}/{db}{tail}", &head[..cut])
}

/// A new empty database with the migrations applied; returns its URL and a pool.
pub async fn fresh_database(tag: &str) -> (String, PgPool) {
    let url = empty_database(tag).await;
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .connect(&url)
        .await
        .expect("connect to test database");
    coeqwal_network_api::MIGRATOR
        .run(&pool)
        .await
        .expect("migrations apply");
    (url, pool)
}

/// A fresh database holding the files of `dir`, imported with the real `import` code.
pub async fn postgis_with(dir: &std::path::Path, tag: &str) -> (String, PgPool) {
    let (url, pool) = fresh_database(tag).await;
    let config = Config::default();
    coeqwal_network_api::import::import_paths(&pool, &[dir.to_path_buf()], &config.layers, false)
        .await
        .expect("import");
    (url, pool)
}

/// The PostGIS source over a pool (with the default encoder, `rust`).
pub fn postgis_source(pool: PgPool) -> Arc<dyn Source> {
    Arc::new(PostgisSource::new(pool))
}

/// The PostGIS source over a pool, tiles encoded by `encoder`.
#[allow(dead_code)]
pub fn postgis_source_with(
    pool: PgPool,
    encoder: coeqwal_network_api::config::TileEncoder,
) -> Arc<dyn Source> {
    Arc::new(PostgisSource::new(pool).with_encoder(encoder))
}

/// The memory source over a folder.
pub fn memory_source(dir: &std::path::Path) -> Arc<dyn Source> {
    Arc::new(MemorySource::from_dir(dir, &Config::default().layers).expect("load data"))
}

/// Starts the real router on a free port; returns its base URL.
pub async fn start_server(source: Arc<dyn Source>, config: Config) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a free port");
    let addr = listener.local_addr().expect("local addr");
    let state = AppState::load(config, source)
        .await
        .expect("the network graph builds");
    let app = router(state);
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("server runs");
    });
    format!("http://{addr}")
}

/// A decoded tile: layer name -> features (f64 coordinates).
pub type Decoded = std::collections::BTreeMap<String, Vec<mvt_reader::feature::Feature<f64>>>;

/// Decodes MVT bytes with `mvt-reader`, an implementation independent of our encoder.
pub fn decode(bytes: &[u8]) -> Decoded {
    let mut out = Decoded::new();
    if bytes.is_empty() {
        return out;
    }
    let reader = mvt_reader::Reader::new(bytes.to_vec()).expect("tile decodes");
    let names = reader.get_layer_names().expect("layer names");
    for (i, name) in names.into_iter().enumerate() {
        let features = reader.get_features_as::<f64>(i).expect("features decode");
        out.insert(name, features);
    }
    out
}

/// A new empty database with no migrations applied (for testing `migrate` itself); its URL.
pub async fn empty_database(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let admin_url = database_url();
    let name = format!(
        "t_{tag}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&admin_url)
        .await
        .expect("connect to DATABASE_URL");
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\""))
        .execute(&admin)
        .await
        .expect("drop test database");
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&admin)
        .await
        .expect("create test database");
    admin.close().await;
    with_database(&admin_url, &name)
}
