//! coeqwal-network-api: vector tiles, GeoJSON and network analysis for the CalSim3 network.
//!
//! The crate is one library and one binary. `source` is the heart (PostGIS or memory behind
//! one trait); `tiles` and `features` turn its answers into HTTP; `app` holds the router.

pub mod app;
pub mod changes;
pub mod compat;
pub mod config;
pub mod data;
pub mod error;
pub mod features;
pub mod import;
pub mod network;
pub mod openapi;
pub mod source;
pub mod telemetry;
pub mod tiles;
pub mod web;

/// The sqlx migrations, embedded so the binary can apply them anywhere.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
