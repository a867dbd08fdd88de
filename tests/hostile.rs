//! Hostile input: nothing a client sends may panic the server, reach SQL as text, change the
//! database, read a file outside `web/` and `styles/`, or make memory grow without bound.
//!
//! Five parts, on the real components. The parsers' properties (proptest, no HTTP): arbitrary
//! text never panics, what is accepted is within the documented bounds and round-trips, what is
//! refused is a client error. Injection: SQL meta-characters, quotes, comments, unicode, NUL and
//! 10,000-character values in every path and query parameter of every GET route (taken from the
//! server's own `/api/openapi.json`) of a real server on PostGIS with the CalSim3 data, the
//! database fingerprinted before and after. Limits: huge boxes, long layer lists, caps, a
//! 100 KB URL, many headers, a big batch body, and memory across hundreds of such requests.
//! Path traversal on the routes that serve files, over raw TCP where a client would normalise.
//! And the rest of what a client controls: other methods, and hostile headers.
//!
//! The HTTP tests take one lock, so the memory reading of one is not another's growth.

mod common;

use coeqwal_network_api::app::AppState;
use coeqwal_network_api::config::Config;
use coeqwal_network_api::error::AppError;
use coeqwal_network_api::features::{MAX_OFFSET, parse_count, parse_items_query};
use coeqwal_network_api::network::routes::Params;
use coeqwal_network_api::source::memory::MemorySource;
use coeqwal_network_api::tiles::grid::{TileCoord, parse_bbox, parse_tile_path};
use proptest::prelude::*;
use serde_json::Value;
use sqlx::{PgPool, Row};
use std::sync::{Arc, LazyLock};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One HTTP test at a time (see the file comment).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// ---------------------------------------------------------------------------------------------
// Part 1: properties of the parsers.
// ---------------------------------------------------------------------------------------------

/// Text a hostile client might send: any unicode (NUL and controls included), number-like text
/// of any size, and the spellings of special floats and integer edges.
fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[-+ ]?[0-9]{0,40}(\\.[0-9]{0,20})?([eE][-+]?[0-9]{1,5})? ?",
        prop::sample::select(vec![
            "NaN",
            "nan",
            "inf",
            "-inf",
            "+inf",
            "infinity",
            "-Infinity",
            "1e309",
            "-1e309",
            "0x10",
            "1_000",
            "\u{663}",
            "\u{ff11}\u{ff12}",
            "",
            " ",
            "\0",
            "1\0",
            "\u{202e}1",
            "18446744073709551616",
            "-9223372036854775809",
            "4294967296",
            "340282366920938463463374607431768211456",
        ])
        .prop_map(String::from),
        "[a-z0-9]{0,3}\0[a-z0-9]{0,3}",
        any::<i128>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| f.to_string()),
        (0u32..300).prop_map(|n| n.to_string()),
    ]
}

fn is_bad_request(e: &AppError) -> bool {
    matches!(e, AppError::BadRequest(_))
}

fn is_client_error(e: &AppError) -> bool {
    matches!(e, AppError::BadRequest(_) | AppError::NotFound(_))
}

/// Errors echo at most a cut of the user's text, so a 10,000-character value does not come back
/// whole (this bound leaves room for the message around it).
fn is_short(e: &AppError) -> bool {
    e.to_string().chars().count() <= 400
}

/// A state over the embedded sample, for `AppState::layers`.
static STATE: LazyLock<AppState> = LazyLock::new(|| {
    let config = Config::default();
    let source = MemorySource::sample(&config.layers).expect("the sample loads");
    AppState::new(config, Arc::new(source))
});

/// Decoded pairs of a query string, as the server's parsers read it.
fn pairs(raw: &str) -> Option<Vec<(String, String)>> {
    serde_urlencoded::from_str(raw).ok()
}

/// A query string: either any text, or pairs of names and values form-encoded.
fn query_text(names: &'static [&'static str]) -> impl Strategy<Value = String> {
    let name = prop_oneof![
        3 => prop::sample::select(names).prop_map(String::from),
        1 => hostile_text(),
    ];
    prop_oneof![
        hostile_text(),
        prop::collection::vec((name, hostile_text()), 0..6)
            .prop_map(|p| serde_urlencoded::to_string(&p).unwrap_or_default()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        // 400 cases a property in every test run; PROPTEST_CASES=N for a longer run.
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(400),
        // Failures found once are kept as explicit tests below, not in a regressions file.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Any z, x and `y.ext` text with any configured maximum zoom: no panic; an accepted tile is
    /// on the grid, at most the maximum zoom, and its numbers are the ones written.
    #[test]
    fn tile_paths_never_panic_and_accepted_tiles_are_on_the_grid(
        z in hostile_text(),
        x in hostile_text(),
        y in hostile_text(),
        ext in prop_oneof![Just("mvt".to_string()), hostile_text()],
        max_zoom in any::<u8>(),
    ) {
        for y_ext in [format!("{y}.{ext}"), y.clone()] {
            match parse_tile_path(&z, &x, &y_ext, max_zoom) {
                Ok((t, e)) => {
                    prop_assert!(t.z <= max_zoom && t.z <= 30, "{t:?} above {max_zoom}");
                    let n = 1u64 << t.z;
                    prop_assert!((t.x as u64) < n && (t.y as u64) < n, "{t:?} off the grid");
                    let (y_text, ext_text) = y_ext.split_once('.').expect("accepted: has a dot");
                    prop_assert_eq!(z.parse::<u64>().ok(), Some(t.z as u64));
                    prop_assert_eq!(x.parse::<u64>().ok(), Some(t.x as u64));
                    prop_assert_eq!(y_text.parse::<u64>().ok(), Some(t.y as u64));
                    prop_assert_eq!(e, ext_text.to_ascii_lowercase());
                }
                Err(e) => prop_assert!(is_bad_request(&e) && is_short(&e), "{z:?}/{x:?}/{y_ext:?}: {e:?}"),
            }
        }
    }

    /// Every tile of the grid up to the maximum zoom is accepted and round-trips.
    #[test]
    fn tiles_on_the_grid_round_trip(
        z in 0u8..=30,
        fx in any::<u64>(),
        fy in any::<u64>(),
        extra in 0u8..=225,
        ext in prop::sample::select(vec!["mvt", "pbf", "geojson", "MVT"]),
    ) {
        let n = 1u64 << z;
        let (x, y) = (fx % n, fy % n);
        let max_zoom = z.saturating_add(extra);
        let (t, e) = parse_tile_path(&z.to_string(), &x.to_string(), &format!("{y}.{ext}"), max_zoom)
            .map_err(|e| TestCaseError::fail(format!("{z}/{x}/{y}.{ext} refused: {e}")))?;
        prop_assert_eq!(t, TileCoord { z, x: x as u32, y: y as u32 });
        prop_assert_eq!(e, ext.to_ascii_lowercase());
    }

    /// A zoom beyond the grid is a 400 whatever the configured maximum, never a panic (a shift
    /// past 63 bits) or a tile whose column was cut to 32 bits.
    #[test]
    fn zooms_beyond_the_grid_are_refused(z in 31u32..=300, x in any::<u64>(), max_zoom in 31u8..=255) {
        let x = x % 10_000_000_000;
        let r = parse_tile_path(&z.to_string(), &x.to_string(), "0.mvt", max_zoom);
        prop_assert!(matches!(r, Err(AppError::BadRequest(_))), "{z}/{x}/0 with max {max_zoom}: {r:?}");
    }

    /// Any bbox text: no panic; an accepted box is finite, ordered, within -180..180/-90..90 and
    /// the area cap, and equal to the numbers written.
    #[test]
    fn bboxes_never_panic_and_accepted_boxes_are_in_bounds(
        text in prop_oneof![
            hostile_text(),
            prop::collection::vec(
                prop_oneof![(-200.0f64..200.0).prop_map(|f| f.to_string()), hostile_text()],
                0..7,
            )
            .prop_map(|v| v.join(",")),
        ],
        max_area in prop_oneof![Just(3600.0), 0.0f64..100_000.0],
    ) {
        match parse_bbox(&text, max_area) {
            Ok(b) => {
                let v = [b.minx, b.miny, b.maxx, b.maxy];
                prop_assert!(v.iter().all(|f| f.is_finite()), "{text:?} -> {b:?}");
                prop_assert!(-180.0 <= b.minx && b.minx <= b.maxx && b.maxx <= 180.0, "{b:?}");
                prop_assert!(-90.0 <= b.miny && b.miny <= b.maxy && b.maxy <= 90.0, "{b:?}");
                prop_assert!((b.maxx - b.minx) * (b.maxy - b.miny) <= max_area, "{b:?}");
                let written: Vec<f64> = text.split(',').map(|p| p.trim().parse::<f64>().unwrap_or(f64::NAN)).collect();
                prop_assert_eq!(written, v.to_vec());
            }
            Err(e) => prop_assert!(is_bad_request(&e) && is_short(&e), "{text:?}: {e:?}"),
        }
    }

    /// Every box within the limits is accepted exactly as written.
    #[test]
    fn boxes_within_the_limits_round_trip(
        a in -180.0f64..=180.0, b in -180.0f64..=180.0,
        c in -90.0f64..=90.0, d in -90.0f64..=90.0,
    ) {
        let (minx, maxx) = (a.min(b), a.max(b));
        let (miny, maxy) = (c.min(d), c.max(d));
        let area = (maxx - minx) * (maxy - miny);
        let text = format!("{minx},{miny},{maxx},{maxy}");
        let r = parse_bbox(&text, 3600.0);
        if area <= 3600.0 {
            let got = r.map_err(|e| TestCaseError::fail(format!("{text} refused: {e}")))?;
            prop_assert_eq!([got.minx, got.miny, got.maxx, got.maxy], [minx, miny, maxx, maxy]);
        } else {
            prop_assert!(matches!(r, Err(AppError::BadRequest(_))), "{text}: area {area} accepted");
        }
    }

    /// Any layer list: no panic; an accepted list names distinct configured layers, no more than
    /// the per-request maximum, in the order written; too many names is a 400, an unknown name a
    /// 404 or 400.
    #[test]
    fn layer_lists_never_panic_and_accepted_lists_are_configured_layers(
        list in prop_oneof![
            hostile_text(),
            prop::collection::vec(
                prop_oneof![
                    3 => prop::sample::select(vec!["nodes", "arcs", "demand_units", "NODES", "nodes ", "", "nodes\0"]).prop_map(String::from),
                    1 => hostile_text(),
                ],
                0..40,
            )
            .prop_map(|v| v.join(",")),
        ],
    ) {
        let state = &*STATE;
        let max = state.config.max_layers_per_request;
        match state.layers(&list) {
            Ok(layers) => {
                prop_assert!(!layers.is_empty() && layers.len() <= max, "{list:?}: {} layers", layers.len());
                let names: Vec<&str> = layers.iter().map(|l| l.name.as_str()).collect();
                let distinct: std::collections::HashSet<&&str> = names.iter().collect();
                prop_assert_eq!(distinct.len(), names.len(), "repeated layer in {:?}", list);
                prop_assert_eq!(names.join(","), list);
            }
            Err(e) => {
                prop_assert!(is_client_error(&e) && is_short(&e), "{list:?}: {e:?}");
                if list.split(',').count() > max {
                    prop_assert!(is_bad_request(&e), "{} names: {e:?}", list.split(',').count());
                }
            }
        }
    }

    /// Every order of every non-empty set of configured layers is accepted as written.
    #[test]
    fn configured_layer_lists_round_trip(
        order in Just(vec!["nodes", "arcs", "demand_units"]).prop_shuffle(),
        take in 1usize..=3,
    ) {
        let list = order[..take].join(",");
        let layers = STATE.layers(&list).map_err(|e| TestCaseError::fail(format!("{list}: {e}")))?;
        prop_assert_eq!(layers.iter().map(|l| l.name.as_str()).collect::<Vec<_>>().join(","), list);
    }

    /// Any count text with any bounds: no panic; an accepted count is within the bounds and is
    /// the number written.
    #[test]
    fn counts_never_panic_and_stay_within_bounds(
        value in hostile_text(),
        min in 0usize..1000,
        span in 0usize..20_000_000,
    ) {
        let max = min + span;
        match parse_count("limit", &value, min, max) {
            Ok(n) => {
                prop_assert!(min <= n && n <= max, "{value:?} -> {n} outside {min}..={max}");
                prop_assert_eq!(value.trim().parse::<usize>().ok(), Some(n));
            }
            Err(e) => prop_assert!(is_bad_request(&e) && is_short(&e), "{value:?}: {e:?}"),
        }
        let inside = min + span / 2;
        prop_assert_eq!(parse_count("limit", &inside.to_string(), min, max).ok(), Some(inside));
    }

    /// Any query string for a route taking `max_depth`, `include_arcs` and `f`: no panic; a name
    /// outside those, or a NUL anywhere, is a 400; accepted integers are within their bounds and
    /// are the last value written.
    #[test]
    fn route_parameters_never_panic_and_stay_within_bounds(
        raw in query_text(&["max_depth", "include_arcs", "f"]),
    ) {
        let allowed = ["max_depth", "include_arcs", "f"];
        let decoded = pairs(&raw);
        match Params::parse(Some(&raw), &allowed) {
            Ok(p) => {
                let decoded = decoded.expect("accepted text decodes");
                prop_assert!(decoded.iter().all(|(k, _)| allowed.contains(&k.as_str())), "{raw:?}");
                prop_assert!(
                    decoded.iter().all(|(k, v)| !k.contains('\0') && !v.contains('\0')),
                    "NUL accepted in {raw:?}"
                );
                let last = decoded.iter().rev().find(|(k, _)| k == "max_depth").map(|(_, v)| v.clone());
                match p.int("max_depth", 1, 1000, None) {
                    Ok(Some(n)) => {
                        prop_assert!((1..=1000).contains(&n), "{n}");
                        prop_assert_eq!(last.and_then(|v| v.trim().parse::<i64>().ok()), Some(n));
                    }
                    Ok(None) => prop_assert!(last.is_none()),
                    Err(e) => prop_assert!(is_bad_request(&e), "{e:?}"),
                }
                if let Err(e) = p.bool("include_arcs", true) {
                    prop_assert!(is_bad_request(&e), "{e:?}");
                }
                if let Err(e) = p.wants_geojson() {
                    prop_assert!(is_bad_request(&e), "{e:?}");
                }
            }
            Err(e) => prop_assert!(is_bad_request(&e) && is_short(&e), "{raw:?}: {e:?}"),
        }
    }

    /// Any items query string: no panic; what is accepted is within the configured limits and
    /// names only published properties; a NUL in a filter is a 400 (PostgreSQL text cannot hold
    /// it, so it must not get that far).
    #[test]
    fn items_queries_never_panic_and_stay_within_limits(
        raw in query_text(&["bbox", "limit", "offset", "clip", "f", "node_type", "short_code", "capacity_taf"]),
    ) {
        let config = Config::default();
        let layer = config.layer("nodes").expect("nodes layer");
        match parse_items_query(Some(&raw), layer, &config) {
            Ok(q) => {
                prop_assert!(q.limit >= 1 && q.limit <= config.items_max_limit, "limit {}", q.limit);
                prop_assert!(q.offset <= MAX_OFFSET, "offset {}", q.offset);
                if let Some(b) = q.bbox {
                    prop_assert!(b.minx <= b.maxx && b.miny <= b.maxy, "{b:?}");
                    prop_assert!((b.maxx - b.minx) * (b.maxy - b.miny) <= config.max_bbox_area);
                }
                for (name, value) in &q.filters {
                    prop_assert!(layer.property(name).is_some(), "filter on {name:?}");
                    prop_assert!(!value.contains('\0'), "NUL filter value accepted from {raw:?}");
                }
            }
            Err(e) => prop_assert!(is_bad_request(&e) && is_short(&e), "{raw:?}: {e:?}"),
        }
    }

    /// Well-formed items queries are accepted with exactly the values written.
    #[test]
    fn items_queries_within_limits_round_trip(
        limit in 1usize..=10_000,
        offset in 0usize..=MAX_OFFSET,
        clip in any::<bool>(),
        node_type in "[^\0]{0,40}",
    ) {
        let config = Config::default();
        let layer = config.layer("nodes").expect("nodes layer");
        let raw = serde_urlencoded::to_string([
            ("bbox", "-122.5,37.5,-121,39".to_string()),
            ("limit", limit.to_string()),
            ("offset", offset.to_string()),
            ("clip", clip.to_string()),
            ("node_type", node_type.clone()),
        ])
        .expect("encodes");
        let q = parse_items_query(Some(&raw), layer, &config)
            .map_err(|e| TestCaseError::fail(format!("{raw}: {e}")))?;
        prop_assert_eq!((q.limit, q.offset, q.clip), (limit, offset, clip));
        prop_assert_eq!(q.filters, vec![("node_type".to_string(), node_type)]);
        prop_assert!(q.bbox.is_some());
    }
}

// ---------------------------------------------------------------------------------------------
// Shared pieces of the HTTP tests.
// ---------------------------------------------------------------------------------------------

/// A real server on PostGIS with the CalSim3 data, and the pool behind it.
async fn calsim3_server(tag: &str) -> (PgPool, String) {
    let (_url, pool) = common::postgis_with(&common::calsim3_dir(), tag).await;
    let config = Config {
        // `/api/workshop/status` warms these zooms in the background; keep it small.
        warm_zooms: "0-1".into(),
        ..Config::default()
    };
    let base = common::start_server(common::postgis_source(pool.clone()), config).await;
    (pool, base)
}

/// Row counts and md5s of the three tables, and the tables that exist: equal means untouched.
async fn fingerprint(pool: &PgPool) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for table in ["network_node", "network_arc", "demand_unit"] {
        let sql = format!(
            "SELECT count(*)::text || ' rows, md5 ' || \
               coalesce(md5(string_agg(t::text, ',' ORDER BY t.id)), '-') FROM {table} t"
        );
        let row = sqlx::query(&sql)
            .fetch_one(pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        out.push((table.to_string(), row.get::<String, _>(0)));
    }
    let tables = sqlx::query(
        "SELECT count(*)::text || ': ' || coalesce(string_agg(schemaname || '.' || tablename, ',' \
           ORDER BY schemaname, tablename), '') FROM pg_tables \
         WHERE schemaname NOT IN ('pg_catalog', 'information_schema')",
    )
    .fetch_one(pool)
    .await
    .expect("pg_tables");
    out.push(("tables".into(), tables.get::<String, _>(0)));
    let public: i64 = sqlx::query("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        .fetch_one(pool)
        .await
        .expect("pg_tables public")
        .get(0);
    out.push(("public tables".into(), public.to_string()));
    out
}

/// An answer, read whole.
struct Reply {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    fn short(&self) -> String {
        let t = self.text();
        if t.chars().count() > 300 {
            format!("{}...", t.chars().take(300).collect::<String>())
        } else {
            t
        }
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(120))
        .build()
        .expect("client")
}

async fn get(client: &reqwest::Client, url: &str) -> Reply {
    let r = client
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {}: {e}", cut(url, 200)));
    reply(r).await
}

async fn reply(r: reqwest::Response) -> Reply {
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = r.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
    Reply {
        status,
        content_type,
        body,
    }
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() > max {
        format!(
            "{}...({} chars)",
            s.chars().take(max).collect::<String>(),
            s.chars().count()
        )
    } else {
        s.to_string()
    }
}

/// Percent-encodes every byte but the unreserved ones, so a value stays one path segment.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A problem+json answer whose `status` is the HTTP status, with a detail that echoes at most a
/// cut of what was sent; `None` when it is one, else what is wrong.
fn problem_fault(r: &Reply) -> Option<String> {
    if !r.content_type.starts_with("application/problem+json") {
        return Some(format!(
            "{} with content-type {:?}, not application/problem+json: {}",
            r.status,
            r.content_type,
            r.short()
        ));
    }
    let Some(doc) = r.json() else {
        return Some(format!("{} problem is not JSON: {}", r.status, r.short()));
    };
    if doc["status"] != r.status {
        return Some(format!(
            "problem status {} on HTTP {}",
            doc["status"], r.status
        ));
    }
    if doc["detail"].as_str().is_none_or(|d| d.is_empty()) {
        return Some(format!("problem without detail: {}", r.short()));
    }
    if r.body.len() > 2048 {
        return Some(format!(
            "problem of {} bytes: the detail echoes the whole input: {}",
            r.body.len(),
            r.short()
        ));
    }
    None
}

/// Failures gathered over many requests, reported together.
#[derive(Default)]
struct Failures(Vec<String>);

impl Failures {
    fn add(&mut self, msg: String) {
        self.0.push(msg);
    }

    fn finish(self, what: &str) {
        let n = self.0.len();
        let shown: Vec<String> = self.0.into_iter().take(60).collect();
        assert!(
            n == 0,
            "{what}: {n} failure(s) (first {}):\n  - {}",
            shown.len(),
            shown.join("\n  - ")
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Part 2: injection into every parameter of every GET route.
// ---------------------------------------------------------------------------------------------

/// Values that would break a server building SQL or file names from text, or trusting sizes.
fn hostile_values() -> Vec<(&'static str, String)> {
    vec![
        ("quote", "'".into()),
        ("tautology", "' OR '1'='1".into()),
        ("tautology_num", "1 OR 1=1".into()),
        ("stacked", "1; DROP TABLE network_node; --".into()),
        (
            "stacked_quote",
            "x'; DELETE FROM network_arc WHERE '1'='1'; --".into(),
        ),
        (
            "double_quote",
            "\"; DROP TABLE demand_unit; --".into(),
        ),
        ("block_comment", "/* comment */ SHSTA /*".into()),
        (
            "union",
            "0) UNION SELECT usename, passwd FROM pg_shadow --".into(),
        ),
        (
            "dollar",
            "$$; CREATE TABLE pwned(x int); $$".into(),
        ),
        ("like_wildcards", "%_%".into()),
        ("backslash", "\\'\\\"\\\\".into()),
        (
            "unicode",
            "\u{3a9}\u{2248}\u{e7} \u{1f6b0} \u{634}\u{633} \u{65e5}\u{672c} \u{202e}abc\u{200b}e\u{301}".into(),
        ),
        ("nul", "a\0b".into()),
        ("nul_only", "\0".into()),
        ("crlf", "x\r\nX-Injected: 1".into()),
        ("long", "A".repeat(10_000)),
        ("long_sql", "';--".repeat(2_500)),
        ("huge_number", "99999999999999999999999999999999".into()),
        ("negative", "-1".into()),
        ("nan", "NaN".into()),
        ("inf", "-inf".into()),
        ("exponent", "1e400".into()),
        ("percent", "%".into()),
        ("template", "${jndi:ldap://x}{{7*7}}".into()),
        ("empty", String::new()),
    ]
}

/// Byte sequences that are not text: sent percent-encoded as they are, in place of [`MARK`].
const RAW_VALUES: &[(&str, &str)] = &[
    ("raw_invalid_utf8", "%FF%FE"),
    ("raw_overlong_dots", "%C0%AE%C0%AE"),
    ("raw_truncated_utf8", "%E2%82"),
    ("raw_double_encoded", "%2527%253B--"),
];

/// Stands for a raw value in a URL until [`with_raw`] puts the bytes in.
const MARK: &str = "RAWVALUEMARK";

/// Every hostile value: the text ones, then the raw ones as [`MARK`].
fn all_values() -> Vec<(&'static str, String)> {
    let mut v = hostile_values();
    v.extend(RAW_VALUES.iter().map(|(name, _)| (*name, MARK.to_string())));
    v
}

/// The URL with the raw bytes of value `name` in place of [`MARK`].
fn with_raw(url: String, name: &str) -> String {
    match RAW_VALUES.iter().find(|(n, _)| *n == name) {
        Some((_, raw)) => url.replace(MARK, raw),
        None => url,
    }
}

/// What a 2xx may legitimately mean for a parameter whose value is data to look for rather than
/// a switch: any text is a fair question, and "nothing" a fair answer.
#[derive(Clone, Copy, Debug)]
enum DataParam {
    /// `region` of `/api/nodes` and `/api/arcs`: a filter; no region has these names: `[]`.
    EmptyList,
    /// `q` of `/api/search`: 2 to 100 characters are a search (200), other lengths a 400; a
    /// tautology finds nothing (it is text to look for, not SQL).
    Search,
    /// `arc_types` of the upstream/downstream walks: a set of arc types; none of these is one,
    /// so the walk keeps only its origin.
    OnlyOrigin,
    /// A property filter of `/collections/{layer}/items`: nothing has these values.
    NoMatch,
}

fn data_param(route: &str, param: &str) -> Option<DataParam> {
    match (route, param) {
        ("/api/nodes" | "/api/arcs", "region") => Some(DataParam::EmptyList),
        ("/api/search", "q") => Some(DataParam::Search),
        ("/network/nodes/{code}/upstream" | "/network/nodes/{code}/downstream", "arc_types") => {
            Some(DataParam::OnlyOrigin)
        }
        _ => None,
    }
}

/// Checks a 2xx answer to a data parameter; `None` when it is the "nothing" it should be.
fn data_fault(kind: DataParam, value_name: &str, r: &Reply) -> Option<String> {
    let doc = r.json()?;
    match kind {
        DataParam::EmptyList => {
            (doc != Value::Array(vec![])).then(|| format!("expected [], got {}", r.short()))
        }
        DataParam::Search => (value_name.starts_with("tautology") && doc["total"] != 0)
            .then(|| format!("a tautology found {} results: {}", doc["total"], r.short())),
        DataParam::OnlyOrigin => (doc["node_count"] != 1 || doc["arc_count"] != 0).then(|| {
            format!(
                "walk with hostile arc_types reached {} nodes, {} arcs",
                doc["node_count"], doc["arc_count"]
            )
        }),
        DataParam::NoMatch => (value_name != "empty" && doc["numberMatched"] != 0).then(|| {
            format!(
                "filter matched {} features: {}",
                doc["numberMatched"],
                r.short()
            )
        }),
    }
}

/// A GET route of the OpenAPI document with its parameters.
struct Route {
    path: String,
    /// (name, in "path" or "query", required, example as text)
    params: Vec<(String, String, bool, Option<String>)>,
}

fn routes_of(doc: &Value) -> Vec<Route> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let Some(get) = item.get("get") else { continue };
        let params = get["parameters"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .map(|p| {
                        let example = match &p["example"] {
                            Value::Null => None,
                            Value::String(s) => Some(s.clone()),
                            other => Some(other.to_string()),
                        };
                        (
                            p["name"].as_str().unwrap_or_default().to_string(),
                            p["in"].as_str().unwrap_or_default().to_string(),
                            p["required"].as_bool().unwrap_or(false),
                            example,
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push(Route {
            path: path.clone(),
            params,
        });
    }
    out
}

/// The URL of a route with its path parameters and required query parameters at their
/// examples, `over` giving one parameter another value, and `extra` added to the query.
fn url_of(
    base: &str,
    route: &Route,
    over: Option<(&str, &str)>,
    extra: &[(String, String)],
) -> String {
    let mut path = route.path.clone();
    let mut query: Vec<(String, String)> = Vec::new();
    for (name, at, required, example) in &route.params {
        let value = match over {
            Some((n, v)) if n == name => Some(v.to_string()),
            _ if at == "path" || *required => example.clone(),
            _ => None,
        };
        let Some(value) = value else { continue };
        if at == "path" {
            path = path.replace(&format!("{{{name}}}"), &encode(&value));
        } else {
            query.push((name.clone(), value));
        }
    }
    query.extend(extra.iter().cloned());
    if query.is_empty() {
        format!("{base}{path}")
    } else {
        let q = serde_urlencoded::to_string(&query).expect("query encodes");
        format!("{base}{path}?{q}")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injection_into_every_parameter_of_every_route_is_refused_and_changes_nothing() {
    let _serial = SERIAL.lock().await;
    let (pool, base) = calsim3_server("hostile_inject").await;
    let before = fingerprint(&pool).await;
    assert_eq!(before[0].1.split(' ').next(), Some("1400"), "{before:?}");
    let client = client();
    let doc = get(&client, &format!("{base}/api/openapi.json"))
        .await
        .json()
        .expect("the OpenAPI document");
    let routes = routes_of(&doc);
    assert!(
        routes.len() >= 30,
        "only {} GET routes documented",
        routes.len()
    );
    let values = all_values();
    let mut f = Failures::default();
    let mut requests = 0usize;

    for route in &routes {
        // Each route answers its examples: the hostile values below reach the real parsers.
        let url = url_of(&base, route, None, &[]);
        let r = get(&client, &url).await;
        requests += 1;
        if !(200..300).contains(&r.status) {
            f.add(format!(
                "{url}: examples answer {}: {}",
                r.status,
                r.short()
            ));
        }
        let takes_query = route.params.iter().any(|(_, at, _, _)| at == "query");

        for (name, at, _, _) in &route.params {
            let data = data_param(&route.path, name);
            for (vname, value) in &values {
                let url = with_raw(url_of(&base, route, Some((name, value)), &[]), vname);
                let r = get(&client, &url).await;
                requests += 1;
                let at_what = format!("{} {at} {name}={vname}", route.path);
                match r.status {
                    500.. => f.add(format!("{at_what}: {} {}", r.status, r.short())),
                    400..=499 => {
                        if let Some(fault) = problem_fault(&r) {
                            f.add(format!("{at_what}: {fault}"));
                        }
                    }
                    200..=299 => match data {
                        Some(kind) => {
                            if let Some(fault) = data_fault(kind, vname, &r) {
                                f.add(format!("{at_what}: {fault}"));
                            }
                        }
                        None => f.add(format!(
                            "{at_what}: accepted ({}), a hostile value must be refused: {}",
                            r.status,
                            r.short()
                        )),
                    },
                    other => f.add(format!("{at_what}: unexpected {other}")),
                }
            }
        }

        // Hostile parameter names. A route that takes query parameters refuses unknown ones
        // (400); one that takes none ignores the query string (tiles, TileJSON, files, health,
        // metrics) and may answer as usual, but never with a server error.
        for (vname, value) in &values {
            let extra = [(value.clone(), "1".to_string())];
            let url = with_raw(url_of(&base, route, None, &extra), vname);
            let r = get(&client, &url).await;
            requests += 1;
            let at_what = format!("{} unknown parameter named {vname}", route.path);
            match r.status {
                500.. => f.add(format!("{at_what}: {} {}", r.status, r.short())),
                400..=499 => {
                    if let Some(fault) = problem_fault(&r) {
                        f.add(format!("{at_what}: {fault}"));
                    }
                }
                200..=299 if !takes_query => {}
                other => f.add(format!(
                    "{at_what}: {other}, expected 400 on a route with parameters: {}",
                    r.short()
                )),
            }
        }
    }

    // Property filters of the items route (the document lists them only in its summary).
    for (layer, props) in [
        (
            "nodes",
            &[
                "node_type",
                "short_code",
                "name",
                "river_mile",
                "capacity_taf",
            ][..],
        ),
        ("arcs", &["arc_type", "from_node", "length_m"][..]),
        ("demand_units", &["du_id", "kind", "acres"][..]),
    ] {
        for prop in props {
            for (vname, value) in &values {
                let q = serde_urlencoded::to_string([(prop, value)]).expect("encodes");
                let url = with_raw(format!("{base}/collections/{layer}/items?{q}"), vname);
                let r = get(&client, &url).await;
                requests += 1;
                let at_what = format!("/collections/{layer}/items ?{prop}={vname}");
                match r.status {
                    500.. => f.add(format!("{at_what}: {} {}", r.status, r.short())),
                    400..=499 => {
                        if let Some(fault) = problem_fault(&r) {
                            f.add(format!("{at_what}: {fault}"));
                        }
                    }
                    200 => {
                        if let Some(fault) = data_fault(DataParam::NoMatch, vname, &r) {
                            f.add(format!("{at_what}: {fault}"));
                        }
                    }
                    other => f.add(format!("{at_what}: unexpected {other}")),
                }
            }
        }
    }

    // The server still answers, and the database is exactly as it was.
    let r = get(&client, &format!("{base}/ready")).await;
    if r.status != 200 {
        f.add(format!("/ready after the injection: {}", r.status));
    }
    let after = fingerprint(&pool).await;
    if after != before {
        f.add(format!("the database changed: {before:?} -> {after:?}"));
    }
    assert!(requests > 2000, "only {requests} requests sent");
    f.finish("injection");
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP/1.1, for what a client library would normalise or refuse to send.
// ---------------------------------------------------------------------------------------------

/// What came back on a raw connection: an answer, or the connection closed without one.
#[derive(Debug)]
enum Raw {
    Answer {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    Closed(String),
}

impl Raw {
    fn status(&self) -> Option<u16> {
        match self {
            Raw::Answer { status, .. } => Some(*status),
            Raw::Closed(_) => None,
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        match self {
            Raw::Answer { headers, .. } => headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str()),
            Raw::Closed(_) => None,
        }
    }

    fn body_text(&self) -> String {
        match self {
            Raw::Answer { body, .. } => String::from_utf8_lossy(body).into_owned(),
            Raw::Closed(_) => String::new(),
        }
    }

    fn describe(&self) -> String {
        match self {
            Raw::Answer { status, .. } => format!(
                "{status} ({}) {}",
                self.header("content-type").unwrap_or("no content-type"),
                cut(&self.body_text(), 200)
            ),
            Raw::Closed(why) => format!("connection closed without an answer ({why})"),
        }
    }
}

/// Sends `head` (request line and headers, without the blank line) and `body`, reads to EOF.
async fn raw_request(base: &str, head: &str, body: &[u8]) -> Raw {
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut bytes = head.as_bytes().to_vec();
    bytes.extend_from_slice(b"\r\n\r\n");
    bytes.extend_from_slice(body);
    // The server may answer and close before reading everything: that is an answer too.
    let _ = stream.write_all(&bytes).await;
    let mut out = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        stream.read_to_end(&mut out),
    )
    .await;
    if let Ok(Err(e)) = &read
        && out.is_empty()
    {
        return Raw::Closed(e.to_string());
    }
    if read.is_err() && out.is_empty() {
        return Raw::Closed("no answer within 60 s".into());
    }
    parse_raw(&out).unwrap_or_else(|| Raw::Closed(format!("{} unparsable bytes", out.len())))
}

fn parse_raw(out: &[u8]) -> Option<Raw> {
    let split = out.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let raw_body = &out[split + 4..];
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    let body = if chunked {
        dechunk(raw_body)
    } else {
        raw_body.to_vec()
    };
    Some(Raw::Answer {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&data[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok())
            .unwrap_or(0);
        data = &data[eol + 2..];
        if size == 0 || data.len() < size {
            out.extend_from_slice(&data[..size.min(data.len())]);
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = data.get(size + 2..).unwrap_or_default();
    }
    out
}

async fn raw_get(base: &str, target: &str) -> Raw {
    raw_request(
        base,
        &format!("GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close"),
        b"",
    )
    .await
}

/// Resident memory of this process (the server runs in it), in bytes.
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

// ---------------------------------------------------------------------------------------------
// Part 3: limits.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_are_clean_client_errors_and_memory_stays_bounded() {
    let _serial = SERIAL.lock().await;
    let (pool, base) = calsim3_server("hostile_limits").await;
    let before = fingerprint(&pool).await;
    let client = client();
    let mut f = Failures::default();

    let names_1000: Vec<String> = (0..1000).map(|i| format!("layer{i}")).collect();
    let names_1000 = names_1000.join(",");
    let known_1000 = vec!["nodes"; 1000].join(",");
    let california = "-125,32,-114,42.5";
    // (path and query, expected status)
    let cases: Vec<(String, u16)> = vec![
        // A box over the whole world is above the area cap, whatever the limit.
        (
            "/collections/nodes/items?bbox=-180,-90,180,90&limit=10000".into(),
            400,
        ),
        (
            "/api/nodes/spatial?bbox=-180,-90,180,90&limit=10000".into(),
            400,
        ),
        (
            format!("/collections/nodes/items?bbox={california}&limit=10001"),
            400,
        ),
        (
            format!("/collections/nodes/items?bbox={california}&limit=18446744073709551616"),
            400,
        ),
        ("/collections/nodes/items?offset=10000001".into(), 400),
        // Layer lists: too many names is a 400 before any name is looked at.
        (format!("/tiles/{names_1000}/0/0/0.mvt"), 400),
        (format!("/tiles/{known_1000}/0/0/0.mvt"), 400),
        (format!("/tiles/{names_1000}.json"), 400),
        // A collection is one layer: a list names none.
        (format!("/collections/{names_1000}/items"), 404),
        (
            format!("/tiles/{}/0/0/0.mvt", vec!["nodes"; 17].join(",")),
            400,
        ),
        (
            format!("/tiles/{}/0/0/0.mvt", vec!["nope"; 16].join(",")),
            404,
        ),
        // Depths and limits past their caps.
        ("/network/nodes/SHSTA/upstream?max_depth=1001".into(), 400),
        (
            "/network/nodes/SHSTA/downstream?max_depth=99999999999999999999".into(),
            400,
        ),
        ("/network/nodes/SHSTA/downstream?max_depth=0".into(), 400),
        ("/api/nodes/81/analysis?max_depth=11".into(), 400),
        ("/api/network/analysis/node/81?max_depth=0".into(), 400),
        ("/api/nodes/81/network?max_depth=101".into(), 400),
        ("/api/nodes/81/network?max_depth=-1".into(), 400),
        ("/api/nodes?limit=10001".into(), 400),
        ("/api/arcs?limit=0".into(), 400),
        (
            format!("/api/nodes/spatial?bbox={california}&limit=10001"),
            400,
        ),
        (format!("/api/nodes/spatial?bbox={california}&zoom=23"), 400),
        ("/api/nodes/optimized?limit=10001".into(), 400),
        ("/api/search?q=SHA&limit=101".into(), 400),
        (format!("/api/search?q={}", "S".repeat(101)), 400),
        ("/tiles/nodes/31/0/0.mvt".into(), 400),
        ("/tiles/nodes/64/0/0.mvt".into(), 400),
        // At the caps, the same routes answer: the refusals above are about the values.
        (
            format!("/collections/nodes/items?bbox={california}&limit=10000"),
            200,
        ),
        ("/network/nodes/SHSTA/upstream?max_depth=1000".into(), 200),
        ("/api/nodes/81/analysis?max_depth=10".into(), 200),
        ("/api/nodes/81/network?max_depth=100".into(), 200),
        ("/api/nodes?limit=10000".into(), 200),
        ("/api/search?q=SHA&limit=100".into(), 200),
        ("/tiles/nodes,arcs,demand_units/0/0/0.mvt".into(), 200),
    ];
    for (path, status) in &cases {
        let r = get(&client, &format!("{base}{path}")).await;
        let at = cut(path, 120);
        if r.status != *status {
            f.add(format!(
                "{at}: {} (expected {status}): {}",
                r.status,
                r.short()
            ));
        } else if *status >= 400 {
            if let Some(fault) = problem_fault(&r) {
                f.add(format!("{at}: {fault}"));
            }
        }
    }
    // The whole of California in one page: every node, no more than the limit.
    let page = get(
        &client,
        &format!("{base}/collections/nodes/items?bbox={california}&limit=10000"),
    )
    .await
    .json()
    .unwrap_or_default();
    if page["numberReturned"] != page["numberMatched"] || page["numberMatched"] != 1400 {
        f.add(format!(
            "California page: {} of {} returned (expected all 1400)",
            page["numberReturned"], page["numberMatched"]
        ));
    }

    // A 100 KB URL: hyper refuses URIs of 64 KiB or more itself (414, before any handler);
    // whatever comes back must be a 4xx, never a 5xx or a hang, and the server must go on.
    for (what, target) in [
        (
            "100 KB query",
            format!("/collections/nodes/items?name={}", "A".repeat(100_000)),
        ),
        (
            "100 KB path",
            format!("/network/nodes/{}", "A".repeat(100_000)),
        ),
    ] {
        let r = raw_get(&base, &target).await;
        eprintln!("{what}: {}", r.describe());
        match r.status() {
            Some(414 | 431 | 400) => {}
            _ => f.add(format!("{what}: {}", r.describe())),
        }
    }
    // Under hyper's limit, a 60 KB URL reaches the router: a clean answer as for any value.
    let r = raw_get(
        &base,
        &format!("/collections/nodes/items?name={}", "A".repeat(60_000)),
    )
    .await;
    eprintln!("60 KB URL: {}", r.describe());
    match r.status() {
        Some(200 | 400 | 414) => {}
        _ => f.add(format!("60 KB URL: {}", r.describe())),
    }

    // Many headers: hyper reads at most 100; more is a 431 (or a closed connection).
    let many: String = (0..500)
        .map(|i| format!("\r\nX-Hostile-{i}: {i}"))
        .collect();
    let r = raw_request(
        &base,
        &format!("GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close{many}"),
        b"",
    )
    .await;
    eprintln!("500 headers: {}", r.describe());
    match r.status() {
        Some(431) | None => {}
        _ => f.add(format!("500 headers: {}", r.describe())),
    }
    // 100 KB of headers in few lines is within hyper's buffer: read, and the route answers.
    let big: String = (0..10)
        .map(|i| format!("\r\nX-Big-{i}: {}", "v".repeat(10_000)))
        .collect();
    let r = raw_request(
        &base,
        &format!("GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close{big}"),
        b"",
    )
    .await;
    eprintln!("100 KB of headers: {}", r.describe());
    match r.status() {
        Some(200 | 431) | None => {}
        _ => f.add(format!("100 KB of headers: {}", r.describe())),
    }

    // Batch bodies: at most 64 KiB; more is a 413 with a problem, even far more.
    let item = r#"{"path":"/health"}"#;
    let at_cap = {
        let items = vec![item; 50].join(",");
        let pad = 65_536 - items.len() - 2;
        format!("[{items}{}]", " ".repeat(pad))
    };
    assert_eq!(at_cap.len(), 65_536);
    for (what, body, status) in [
        ("exactly 64 KiB", at_cap.clone(), 200u16),
        ("64 KiB + 1", format!("{at_cap} "), 413),
        ("3 MB", format!("[{item}{}]", " ".repeat(3_000_000)), 413),
    ] {
        let r = reply(
            client
                .post(format!("{base}/api/batch"))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("POST /api/batch"),
        )
        .await;
        if r.status != status {
            f.add(format!(
                "batch {what}: {} (expected {status}): {}",
                r.status,
                r.short()
            ));
        } else if status >= 400 {
            if let Some(fault) = problem_fault(&r) {
                f.add(format!("batch {what}: {fault}"));
            }
        }
    }

    // Memory: a few hundred hostile requests (large URLs, long lists, big bodies) may not make
    // the process grow by more than a generous bound. Not a timing: a leak or an unbounded
    // buffer shows as hundreds of megabytes.
    let start = rss_bytes().expect("VmRSS");
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for i in 0..300 {
        let r = match i % 5 {
            0 => {
                get(
                    &client,
                    &format!(
                        "{base}/collections/nodes/items?name={}{i}",
                        "B".repeat(50_000)
                    ),
                )
                .await
            }
            1 => get(&client, &format!("{base}/tiles/{names_1000}/0/0/{i}.mvt")).await,
            2 => {
                reply(
                    client
                        .post(format!("{base}/api/batch"))
                        .body(format!("[{item}{}]", " ".repeat(60_000 + i)))
                        .send()
                        .await
                        .expect("batch"),
                )
                .await
            }
            3 => {
                get(
                    &client,
                    &format!("{base}/api/search?q={}", "%27%3B--".repeat(1_000 + i)),
                )
                .await
            }
            _ => {
                get(
                    &client,
                    &format!("{base}/api/nodes?region={}{i}", "R".repeat(20_000)),
                )
                .await
            }
        };
        *statuses.entry(r.status).or_default() += 1;
    }
    let end = rss_bytes().expect("VmRSS");
    eprintln!("VmRSS {start} -> {end} bytes over 300 hostile requests; statuses {statuses:?}");
    let grown = end.saturating_sub(start);
    if grown > 200 * 1024 * 1024 {
        f.add(format!(
            "memory grew by {} MB over 300 hostile requests ({start} -> {end} bytes)",
            grown / 1024 / 1024
        ));
    }
    if statuses.keys().any(|s| *s >= 500) {
        f.add(format!(
            "server errors among the hostile requests: {statuses:?}"
        ));
    }

    let r = get(&client, &format!("{base}/health")).await;
    if r.status != 200 {
        f.add(format!("/health after the limits: {}", r.status));
    }
    let after = fingerprint(&pool).await;
    if after != before {
        f.add(format!("the database changed: {before:?} -> {after:?}"));
    }
    f.finish("limits");
}

// ---------------------------------------------------------------------------------------------
// Part 4: path traversal.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_traversal_never_reads_outside_web_and_styles() {
    let _serial = SERIAL.lock().await;
    let source = common::memory_source(&common::sample_dir());
    let base = common::start_server(source, Config::default()).await;
    let mut f = Failures::default();

    // The file routes serve their own files, so the refusals below are about the paths.
    for (target, needle) in [
        ("/web/viewer.js", "maplibre"),
        ("/styles/calsim.json", "\"layers\""),
        ("/", "<html"),
        ("/docs", "<html"),
    ] {
        let r = raw_get(&base, target).await;
        if r.status() != Some(200) || !r.body_text().to_lowercase().contains(needle) {
            f.add(format!("{target}: {}", r.describe()));
        }
    }

    let secrets = [
        "[package]",
        "coeqwal-network-api\"",
        "root:",
        "[dependencies]",
    ];
    let targets = [
        "/styles/..%2f..%2fCargo.toml",
        "/styles/..%2fCargo.json",
        "/styles/%2e%2e%2fCargo.json",
        "/styles/%2e%2e%2f%2e%2e%2fCargo.toml",
        "/styles/%252e%252e%252fCargo.json",
        "/styles/..%5c..%5cCargo.json",
        "/styles/../Cargo.toml",
        "/styles/%2fetc%2fpasswd",
        "/styles/%2Fetc%2Fpasswd.json",
        "/styles/..",
        "/styles/.json",
        "/styles/calsim.json%00.toml",
        "/styles/calsim%00.json",
        "/web/../Cargo.toml",
        "/web/./../Cargo.toml",
        "/web/%2e%2e/Cargo.toml",
        "/web/%2E%2E/%2E%2E/etc/passwd",
        "/web/.%2e/Cargo.toml",
        "/web/..%2fCargo.toml",
        "/web/..%2F..%2F..%2Fetc%2Fpasswd",
        "/web/%252e%252e/Cargo.toml",
        "/web/%252e%252e%252fCargo.toml",
        "/web/..\\Cargo.toml",
        "/web/..%5cCargo.toml",
        "/web/..%5c..%5cetc%5cpasswd",
        "/web//etc/passwd",
        "/web///etc/passwd",
        "/web/%2fetc%2fpasswd",
        "/web/%2F%2Fetc%2Fpasswd",
        "/web/....//....//Cargo.toml",
        "/web/%c0%ae%c0%ae/Cargo.toml",
        "/web/%e0%80%ae%e0%80%ae/Cargo.toml",
        "/web/%00../Cargo.toml",
        "/web/index.html%00.js",
        "/web/viewer.js/../../Cargo.toml",
        "/web/viewer.js/x",
        "/web/",
        "/web",
        "/web/..",
        "/web/%2e%2e",
        "/web/file:///etc/passwd",
        "/web/C:/Windows/win.ini",
        "/docs/../Cargo.toml",
        "/docs/..%2fCargo.toml",
        "/../Cargo.toml",
        "/..%2fCargo.toml",
        "/%2e%2e/Cargo.toml",
        "/Cargo.toml",
        "/etc/passwd",
        "/src/main.rs",
        "/web/../src/main.rs",
        "http://localhost/web/../Cargo.toml",
        "http://localhost/../../etc/passwd",
    ];
    let long_name = format!("/web/{}", "a".repeat(300));
    let long_path = format!("/web/{}", "a/".repeat(3000));
    let mut all: Vec<&str> = targets.to_vec();
    all.push(&long_name);
    all.push(&long_path);
    for target in all {
        let r = raw_get(&base, target).await;
        let text = r.body_text();
        for s in &secrets {
            if text.contains(s) {
                f.add(format!("{}: the body contains {s:?}", cut(target, 80)));
            }
        }
        match r.status() {
            Some(404 | 400) => {
                // An answer of the server carries a problem; hyper's own 400 for a request
                // line it cannot parse has no body at all.
                let problem = r
                    .header("content-type")
                    .is_some_and(|c| c.starts_with("application/problem+json"));
                if !problem && !text.is_empty() {
                    f.add(format!("{}: {}", cut(target, 80), r.describe()));
                }
            }
            // `/web` and `/web/` may send the client to the folder; nothing is read.
            Some(301 | 307 | 308) if target == "/web" || target == "/web/" => {}
            _ => f.add(format!("{}: {}", cut(target, 80), r.describe())),
        }
    }
    f.finish("path traversal");
}

// ---------------------------------------------------------------------------------------------
// Methods and headers: the rest of what a client controls.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_methods_and_hostile_headers_are_clean_answers() {
    let _serial = SERIAL.lock().await;
    let source = common::memory_source(&common::sample_dir());
    let base = common::start_server(source, Config::default()).await;
    let mut f = Failures::default();

    // A method a route does not take is a 405 with `Allow` (a 404 for the files of `/web`,
    // which are only read), as a problem.
    for path in [
        "/health",
        "/tiles/nodes/0/0/0.mvt",
        "/collections/nodes/items",
        "/network/nodes/SHSTA",
        "/api/nodes",
        "/api/batch",
        "/web/viewer.js",
        "/styles/calsim.json",
        "/",
    ] {
        for method in ["POST", "PUT", "DELETE", "PATCH", "FOO"] {
            if path == "/api/batch" && method == "POST" {
                continue;
            }
            let r = raw_request(
                &base,
                &format!(
                    "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: 0"
                ),
                b"",
            )
            .await;
            let problem = r
                .header("content-type")
                .is_some_and(|c| c.starts_with("application/problem+json"));
            match r.status() {
                Some(405) if problem && r.header("allow").is_some() => {}
                Some(404) if problem => {}
                _ => f.add(format!("{method} {path}: {}", r.describe())),
            }
        }
    }

    // Headers the server reads: host and forwarding (links), request id (echoed), conditional,
    // encodings and ranges. Never a 5xx; nothing hostile comes back.
    let long_id = "i".repeat(10_000);
    let etags = vec!["\"x\""; 10_000].join(", ");
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "/collections/nodes/items?limit=1",
            vec![
                ("X-Forwarded-Host", "evil.example/<script>"),
                ("X-Forwarded-Proto", "javascript"),
            ],
        ),
        (
            "/tiles/nodes.json",
            vec![("X-Forwarded-Host", "evil.example\"}, {\"x")],
        ),
        ("/health", vec![("X-Request-Id", long_id.as_str())]),
        (
            "/health",
            vec![("X-Request-Id", "a b\u{7f}'; DROP TABLE x; --")],
        ),
        (
            "/tiles/nodes/0/0/0.mvt",
            vec![("If-None-Match", etags.as_str())],
        ),
        (
            "/tiles/nodes/0/0/0.mvt",
            vec![(
                "Accept-Encoding",
                "br;q=NaN, gzip;q=-1, *;q=1e999, deflate;q=",
            )],
        ),
        (
            "/",
            vec![("Accept", "application/json;q=\u{0}, text/html;;;")],
        ),
        (
            "/web/viewer.js",
            vec![("Range", "bytes=-99999999999999999999999")],
        ),
        ("/web/viewer.js", vec![("Range", "bytes=5-1,0-0,x-y")]),
        (
            "/web/viewer.js",
            vec![("If-Modified-Since", "Sun, 99 Foo 99999 99:99:99 GMT")],
        ),
    ];
    for (path, headers) in &cases {
        let extra: String = headers
            .iter()
            .map(|(k, v)| format!("\r\n{k}: {v}"))
            .collect();
        let r = raw_request(
            &base,
            &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close{extra}"),
            b"",
        )
        .await;
        let what = format!("{path} with {}", cut(&format!("{headers:?}"), 100));
        match r.status() {
            Some(s) if s < 500 => {}
            _ => f.add(format!("{what}: {}", r.describe())),
        }
        let text = r.body_text();
        if text.contains("evil.example") || text.contains("javascript:") {
            f.add(format!(
                "{what}: a forwarded header reached the links: {}",
                cut(&text, 200)
            ));
        }
        if let Some(id) = r.header("x-request-id")
            && headers
                .iter()
                .any(|(k, v)| k.eq_ignore_ascii_case("x-request-id") && *v == id)
        {
            f.add(format!("{what}: the hostile request id was echoed"));
        }
    }
    f.finish("methods and headers");
}
