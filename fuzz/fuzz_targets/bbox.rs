//! `bbox=minLon,minLat,maxLon,maxLat` of arbitrary bytes: a box that parses is finite, ordered,
//! on the globe and within the area cap; anything else is a short 400, never a panic.
#![no_main]

use coeqwal_network_api::error::AppError;
use coeqwal_network_api::tiles::grid::parse_bbox;
use libfuzzer_sys::fuzz_target;

const MAX_AREA: f64 = 3600.0;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match parse_bbox(&text, MAX_AREA) {
        Ok(b) => {
            for v in [b.minx, b.miny, b.maxx, b.maxy] {
                assert!(v.is_finite(), "{b:?}");
            }
            assert!(b.minx <= b.maxx && b.miny <= b.maxy, "{b:?} not ordered");
            assert!(b.minx >= -180.0 && b.maxx <= 180.0, "{b:?} off the globe");
            assert!(b.miny >= -90.0 && b.maxy <= 90.0, "{b:?} off the globe");
            assert!(
                (b.maxx - b.minx) * (b.maxy - b.miny) <= MAX_AREA,
                "{b:?} too large"
            );
        }
        Err(e) => {
            assert!(matches!(e, AppError::BadRequest(_)), "not a 400: {e:?}");
            assert!(e.to_string().len() < 1024, "echoes too much");
        }
    }
});
