//! The `coeqwal-network-api` command: serve (default), migrate, import.
//!
//! Configuration is layered: defaults < `--config FILE` (TOML) < environment < flags; clap
//! reads the last two, this file applies them over the file and validates the result.

use clap::{Args, Parser, Subcommand};
use coeqwal_network_api::config::Config;
use coeqwal_network_api::{app, import, source::postgis};
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "coeqwal-network-api",
    version,
    about = "Vector tiles, GeoJSON and network analysis for the California CalSim3 water network",
    long_about = "Serves the CalSim3 network (nodes, arcs, demand units) as Mapbox Vector Tiles, \
TileJSON and GeoJSON. With DATABASE_URL set it serves PostGIS; without it, an embedded sample \
network (or --data DIR). Run without a subcommand to serve."
)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Args, Clone)]
struct Common {
    /// TOML configuration file (layers, limits); flags and environment override it.
    #[arg(long, global = true, env = "CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// PostgreSQL/PostGIS URL. When set, `serve` reads PostGIS; `migrate` and `import` need it.
    #[arg(
        long,
        global = true,
        env = "DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    database_url: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve tiles, GeoJSON and analysis over HTTP (the default).
    Serve(Box<ServeArgs>),
    /// Apply the schema migrations to DATABASE_URL.
    Migrate,
    /// Load GeoJSON layer files (or folders of nodes/arcs/demand_units.geojson) into PostGIS.
    Import(ImportArgs),
    /// Exit 0 when the server answers GET /health with 200, else 1 (for container health checks).
    Healthcheck(HealthArgs),
    /// Fill a running server's tile cache: request every tile over the data at the given zooms.
    Warm(WarmArgs),
}

#[derive(Args)]
struct HealthArgs {
    /// URL to check [default: http://127.0.0.1:PORT/health, PORT from LISTEN or 8000].
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 3)]
    timeout: u64,
}

#[derive(Args)]
struct WarmArgs {
    /// Base URL of the server to warm.
    #[arg(
        long,
        env = "WARM_URL",
        default_value = "http://127.0.0.1:8000",
        value_name = "URL"
    )]
    url: String,
    /// Zoom range, A-B.
    #[arg(long, default_value = "0-12", value_name = "A-B")]
    zooms: String,
    /// Area to warm, minLon,minLat,maxLon,maxLat [default: the layers' extent from /catalog].
    #[arg(long, value_name = "BBOX", allow_hyphen_values = true)]
    bbox: Option<String>,
    /// Layers, as in tile URLs.
    #[arg(long, default_value = "nodes,arcs,demand_units", value_name = "LIST")]
    layers: String,
    /// Never draw a progress bar (it is drawn only on a terminal anyway).
    #[arg(long)]
    quiet: bool,
}

#[derive(Args, Clone, Default)]
struct ServeArgs {
    /// Address to listen on [default: 0.0.0.0:8000].
    #[arg(long, env = "LISTEN", value_name = "ADDR")]
    listen: Option<String>,
    /// Serve a folder of GeoJSON layer files from memory instead of PostGIS or the sample.
    #[arg(long, env = "DATA_DIR", value_name = "DIR")]
    data: Option<PathBuf>,
    /// Public base URL used in TileJSON and links [default: from the request's Host].
    #[arg(long, env = "PUBLIC_URL", value_name = "URL")]
    public_url: Option<String>,
    /// Connections in the database pool [default: 10].
    #[arg(long, env = "DB_POOL_SIZE", value_name = "N")]
    db_pool_size: Option<u32>,
    /// Tile cache size in MiB; 0 disables it [default: 256].
    #[arg(long, env = "CACHE_SIZE_MB", value_name = "MIB")]
    cache_size_mb: Option<u64>,
    /// Seconds requests in flight may take to finish after SIGTERM [default: 20].
    #[arg(long, env = "SHUTDOWN_GRACE_SECS", value_name = "SECS")]
    shutdown_grace_secs: Option<u64>,
    /// Redis for the shared second cache level [default: none].
    #[arg(long, env = "REDIS_URL", value_name = "URL", hide_env_values = true)]
    redis_url: Option<String>,
    /// Cache-Control of tiles, TileJSON and GeoJSON [default: "public, max-age=300"].
    #[arg(long, env = "CACHE_CONTROL", value_name = "VALUE")]
    cache_control: Option<String>,
    /// Folder of the viewer, served at `/` and `/web/...` [default: web].
    #[arg(long, env = "WEB_DIR", value_name = "DIR")]
    web_dir: Option<PathBuf>,
    /// Folder of MapLibre styles, served at `/styles/{name}.json` [default: styles].
    #[arg(long, env = "STYLES_DIR", value_name = "DIR")]
    styles_dir: Option<PathBuf>,
    /// Glyph URL template written into served styles [default: the style's own].
    #[arg(long, env = "GLYPHS_URL", value_name = "URL")]
    glyphs_url: Option<String>,
    /// Queries and tile generations slower than this log a warning [default: 500].
    #[arg(long, env = "SLOW_QUERY_MS", value_name = "MS")]
    slow_query_ms: Option<u64>,
    /// Who encodes PostGIS tiles: rust (from WKB) or postgis (ST_AsMVT) [default: rust].
    #[arg(long, env = "TILE_ENCODER", value_name = "ENCODER")]
    tile_encoder: Option<coeqwal_network_api::config::TileEncoder>,
    /// Requests running longer are cancelled and answered 503 [default: 10].
    #[arg(long, env = "REQUEST_TIMEOUT_SECS", value_name = "SECS")]
    request_timeout_secs: Option<u64>,
    /// Milliseconds a request waits for a database connection [default: 1500].
    #[arg(long, env = "DB_ACQUIRE_TIMEOUT_MS", value_name = "MS")]
    db_acquire_timeout_ms: Option<u64>,
    /// Seconds a client may take to send a request head, or stay idle [default: 65].
    #[arg(long, env = "CLIENT_TIMEOUT_SECS", value_name = "SECS")]
    client_timeout_secs: Option<u64>,
    /// Comma list of origins CORS allows; `*` for any [default: *].
    #[arg(
        long,
        env = "CORS_ALLOW_ORIGINS",
        value_name = "LIST",
        value_delimiter = ','
    )]
    cors_allow_origins: Option<Vec<String>>,
}

#[derive(Args)]
struct ImportArgs {
    /// GeoJSON files or folders; a file feeds the layer of its name (nodes.geojson -> nodes).
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Never draw a progress bar (it is drawn only on a terminal anyway).
    #[arg(long)]
    quiet: bool,
}

fn load_config(common: &Common, serve: &ServeArgs) -> anyhow::Result<Config> {
    let mut config = match &common.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    if let Some(url) = &common.database_url
        && !url.is_empty()
    {
        config.database_url = Some(url.clone());
    }
    if let Some(v) = &serve.listen {
        config.listen = v.clone();
    }
    if let Some(v) = &serve.data {
        config.data_dir = Some(v.clone());
    }
    if let Some(v) = &serve.public_url {
        config.public_url = Some(v.clone());
    }
    if let Some(v) = serve.db_pool_size {
        config.db_pool_size = v;
    }
    if let Some(v) = serve.cache_size_mb {
        config.cache_size_mb = v;
    }
    if let Some(v) = serve.shutdown_grace_secs {
        config.shutdown_grace_secs = v;
    }
    if let Some(v) = &serve.redis_url
        && !v.is_empty()
    {
        config.redis_url = Some(v.clone());
    }
    if let Some(v) = &serve.cache_control {
        config.cache_control = v.clone();
    }
    if let Some(v) = &serve.web_dir {
        config.web_dir = v.clone();
    }
    if let Some(v) = &serve.styles_dir {
        config.styles_dir = v.clone();
    }
    if let Some(v) = &serve.glyphs_url
        && !v.is_empty()
    {
        config.glyphs_url = Some(v.clone());
    }
    if let Some(v) = serve.slow_query_ms {
        config.slow_query_ms = v;
    }
    if let Some(v) = serve.tile_encoder {
        config.tile_encoder = v;
    }
    if let Some(v) = serve.request_timeout_secs {
        config.request_timeout_secs = v;
    }
    if let Some(v) = serve.db_acquire_timeout_ms {
        config.db_acquire_timeout_ms = v;
    }
    if let Some(v) = serve.client_timeout_secs {
        config.client_timeout_secs = v;
    }
    if let Some(v) = &serve.cors_allow_origins {
        config.cors_allow_origins = v.iter().map(|o| o.trim().to_string()).collect();
    }
    config.validate()?;
    Ok(config)
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|v| v == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None => app::serve(load_config(&cli.common, &cli.serve)?).await,
        Some(Command::Serve(args)) => app::serve(load_config(&cli.common, &args)?).await,
        Some(Command::Migrate) => {
            let config = load_config(&cli.common, &ServeArgs::default())?;
            let url = config
                .database_url
                .as_deref()
                .ok_or_else(|| anyhow::anyhow!("migrate needs DATABASE_URL"))?;
            let pool = postgis::connect(url, 2).await?;
            coeqwal_network_api::MIGRATOR
                .run(&pool)
                .await
                .map_err(|e| anyhow::anyhow!("migration failed: {e}"))?;
            println!("migrations applied");
            Ok(())
        }
        Some(Command::Healthcheck(args)) => {
            let url = args.url.unwrap_or_else(|| {
                let listen = std::env::var("LISTEN").unwrap_or_else(|_| "0.0.0.0:8000".into());
                let port = listen.rsplit(':').next().unwrap_or("8000").to_string();
                format!("http://127.0.0.1:{port}/health")
            });
            let client = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(args.timeout))
                .build()?;
            match client.get(&url).send().await {
                Ok(r) if r.status() == reqwest::StatusCode::OK => Ok(()),
                Ok(r) => {
                    eprintln!("unhealthy: {url} answered {}", r.status());
                    std::process::exit(1)
                }
                Err(e) => {
                    eprintln!("unhealthy: {url}: {e}");
                    std::process::exit(1)
                }
            }
        }
        Some(Command::Warm(args)) => {
            let zooms = coeqwal_network_api::tiles::warm::parse_zooms(&args.zooms, 30)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let bbox = args
                .bbox
                .as_deref()
                .map(|b| coeqwal_network_api::tiles::grid::parse_bbox(b, 64_800.0))
                .transpose()
                .map_err(|e| anyhow::anyhow!("--bbox: {e}"))?;
            let progress = !args.quiet && std::io::stderr().is_terminal();
            let started = std::time::Instant::now();
            let s = coeqwal_network_api::tiles::warm::warm_remote(
                &args.url,
                &args.layers,
                bbox,
                zooms,
                progress,
            )
            .await?;
            println!(
                "warmed {} tiles in {:.1}s: {} with data, {} empty, {} failed, {} bytes",
                s.tiles,
                started.elapsed().as_secs_f64(),
                s.with_data,
                s.empty,
                s.failed,
                s.bytes
            );
            anyhow::ensure!(s.failed == 0, "{} tile requests failed", s.failed);
            Ok(())
        }
        Some(Command::Import(args)) => {
            let config = load_config(&cli.common, &ServeArgs::default())?;
            let url = config
                .database_url
                .as_deref()
                .ok_or_else(|| anyhow::anyhow!("import needs DATABASE_URL"))?;
            let pool = postgis::connect(url, 2).await?;
            let progress = !args.quiet && std::io::stderr().is_terminal();
            let started = std::time::Instant::now();
            let done = import::import_paths(&pool, &args.paths, &config.layers, progress).await?;
            let parts: Vec<String> = done
                .iter()
                .map(|s| format!("{} {} new, {} updated", s.layer, s.inserted, s.updated))
                .collect();
            println!(
                "imported {} file(s) in {:.1}s: {}",
                done.len(),
                started.elapsed().as_secs_f64(),
                parts.join("; ")
            );
            Ok(())
        }
    }
}

#[tokio::main]
async fn main() {
    init_logging();
    let cli = Cli::parse();
    if let Err(e) = run(cli).await {
        let message = postgis::redact(&format!("{e:#}"));
        if std::env::var("LOG_FORMAT").is_ok_and(|v| v == "json") {
            // The shape of the other JSON log lines, so log tooling reads this one too.
            let line = serde_json::json!({
                "timestamp": humantime::format_rfc3339_micros(std::time::SystemTime::now())
                    .to_string(),
                "level": "ERROR",
                "fields": { "message": message },
                "target": env!("CARGO_CRATE_NAME"),
            });
            eprintln!("{line}");
        } else {
            eprintln!("error: {message}");
        }
        std::process::exit(1);
    }
}
