//! `/tiles/{layers}/{z}/{x}/{y}.{format}`: the z, x and y.format segments of arbitrary bytes.
//! A tile that parses lies inside the grid at a zoom the server allows; anything else is a
//! short 4xx, never a panic.
#![no_main]

use coeqwal_network_api::error::AppError;
use coeqwal_network_api::tiles::grid::parse_tile_path;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&max_zoom, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let mut parts = text.splitn(3, '/');
    let (z, x, y_ext) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    match parse_tile_path(z, x, y_ext, max_zoom) {
        Ok((tile, format)) => {
            assert!(
                tile.z <= max_zoom && tile.z <= 30,
                "zoom {} past {max_zoom}",
                tile.z
            );
            let n = 1u64 << tile.z;
            assert!(
                u64::from(tile.x) < n && u64::from(tile.y) < n,
                "{tile:?} off the grid"
            );
            // The extension is the route's to judge (.mvt, .pbf, .geojson, else 400).
            let ext = y_ext.split_once('.').map(|(_, e)| e.to_ascii_lowercase());
            assert_eq!(Some(format), ext);
        }
        Err(e) => assert_client_error(&e),
    }
});

fn assert_client_error(e: &AppError) {
    assert!(
        matches!(e, AppError::BadRequest(_) | AppError::NotFound(_)),
        "not a 4xx: {e:?}"
    );
    assert!(
        e.to_string().len() < 1024,
        "echoes too much: {} bytes",
        e.to_string().len()
    );
}
