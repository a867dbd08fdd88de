//! Vector tiles: grid math, the Rust MVT encoder of the memory source, TileJSON, and routes.

pub mod cache;
pub mod grid;
pub mod mvt;
pub mod routes;
pub mod shared;
pub mod tilejson;
pub mod warm;
