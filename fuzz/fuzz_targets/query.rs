//! Query strings of arbitrary bytes through every query parser: the items query of each layer
//! (bbox, limit, offset, clip, property filters) and the network and compatibility routes'
//! parameters, with every numeric one read as the routes read it. What parses is within its
//! caps; anything else is a short 400, never a panic.
#![no_main]

use coeqwal_network_api::config::Config;
use coeqwal_network_api::error::AppError;
use coeqwal_network_api::features::{MAX_OFFSET, parse_count, parse_items_query};
use coeqwal_network_api::network::routes::Params;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(Config::default)
}

/// Each route's parameter names, as the routes pass them to `Params::parse`.
const ROUTES: &[&[&str]] = &[
    &["max_depth", "arc_types", "f"],
    &["from", "to", "weight", "f"],
    &["limit", "region"],
    &["bbox", "zoom", "limit"],
    &["limit"],
    &["q", "limit"],
    &["max_depth"],
    &["direction", "max_depth", "include_arcs"],
];

fn assert_bad_request(e: &AppError) {
    assert!(matches!(e, AppError::BadRequest(_)), "not a 400: {e:?}");
    assert!(
        e.to_string().len() < 1024,
        "echoes too much: {} bytes",
        e.to_string().len()
    );
}

fuzz_target!(|data: &[u8]| {
    let config = config();
    let raw = String::from_utf8_lossy(data);
    for layer in &config.layers {
        match parse_items_query(Some(&raw), layer, config) {
            Ok(q) => {
                assert!(
                    q.limit >= 1 && q.limit <= config.items_max_limit,
                    "limit {}",
                    q.limit
                );
                assert!(q.offset <= MAX_OFFSET, "offset {}", q.offset);
                for (name, value) in &q.filters {
                    assert!(layer.property(name).is_some(), "filter on {name}");
                    assert!(!value.contains('\0'));
                }
            }
            Err(e) => assert_bad_request(&e),
        }
    }
    for allowed in ROUTES {
        match Params::parse(Some(&raw), allowed) {
            Ok(p) => {
                for name in ["max_depth", "zoom"] {
                    match p.int(name, 0, 1000, None) {
                        Ok(Some(n)) => assert!((0..=1000).contains(&n)),
                        Ok(None) => {}
                        Err(e) => assert_bad_request(&e),
                    }
                }
                if let Some(v) = p.get("limit") {
                    match parse_count("limit", v, 1, 10_000) {
                        Ok(n) => assert!((1..=10_000).contains(&n)),
                        Err(e) => assert_bad_request(&e),
                    }
                }
                if let Err(e) = p.bool("include_arcs", false) {
                    assert_bad_request(&e);
                }
            }
            Err(e) => assert_bad_request(&e),
        }
    }
});
