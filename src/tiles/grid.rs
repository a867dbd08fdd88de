//! Tile math on the WebMercatorQuad grid, and the parsers of the user's z/x/y and bbox text.
//!
//! The grid itself comes from `tile-grid`; this file adds what the routes need on top: checked
//! parsing (every way a coordinate can be wrong becomes a 400 that says which part), Web
//! Mercator projection of lon/lat for the memory source, and the transform into tile units.

use crate::error::{AppError, AppResult};
use std::sync::OnceLock;
use tile_grid::{Tms, Xyz, tms};

/// MVT extent: tile units across one tile.
pub const EXTENT: u32 = 4096;
/// Buffer around each tile, in tile units, kept when clipping.
pub const BUFFER: u32 = 64;
/// Earth radius of the Web Mercator sphere, in metres.
pub const EARTH_RADIUS: f64 = 6_378_137.0;
/// Half the width of the Web Mercator world, in metres.
pub const WORLD_HALF: f64 = std::f64::consts::PI * EARTH_RADIUS;
/// Latitude limit of Web Mercator.
pub const MAX_LAT: f64 = 85.051_128_779_806_59;
/// Deepest zoom of the grid, whatever the configuration: past it a column no longer fits the
/// `u32` of [`TileCoord`], and past 63 `1 << z` itself overflows.
pub const MAX_GRID_ZOOM: u8 = 30;

fn grid() -> &'static Tms {
    static GRID: OnceLock<Tms> = OnceLock::new();
    GRID.get_or_init(|| {
        tms()
            .lookup("WebMercatorQuad")
            .expect("tile-grid ships WebMercatorQuad")
    })
}

/// One tile of the grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TileCoord {
    /// Zoom.
    pub z: u8,
    /// Column, 0 at the antimeridian.
    pub x: u32,
    /// Row, 0 at the north.
    pub y: u32,
}

/// A box in some coordinate system: (min x, min y, max x, max y).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    /// West.
    pub minx: f64,
    /// South.
    pub miny: f64,
    /// East.
    pub maxx: f64,
    /// North.
    pub maxy: f64,
}

impl Bounds {
    /// Whether two boxes overlap (touching counts).
    pub fn intersects(&self, o: &Bounds) -> bool {
        self.minx <= o.maxx && o.minx <= self.maxx && self.miny <= o.maxy && o.miny <= self.maxy
    }

    /// The box grown by `d` on every side.
    pub fn grow(&self, d: f64) -> Bounds {
        Bounds {
            minx: self.minx - d,
            miny: self.miny - d,
            maxx: self.maxx + d,
            maxy: self.maxy + d,
        }
    }
}

impl TileCoord {
    /// Builds a tile, refusing coordinates outside the grid or above `max_zoom` (itself capped
    /// at [`MAX_GRID_ZOOM`]).
    pub fn new(z: u32, x: u64, y: u64, max_zoom: u8) -> AppResult<TileCoord> {
        let max_zoom = max_zoom.min(MAX_GRID_ZOOM);
        if z > max_zoom as u32 {
            return Err(AppError::bad(format!(
                "zoom {z} is above the maximum zoom {max_zoom}"
            )));
        }
        let n = 1u64 << z;
        if x >= n || y >= n {
            return Err(AppError::bad(format!(
                "tile {z}/{x}/{y} is outside the grid: at zoom {z}, x and y run from 0 to {}",
                n - 1
            )));
        }
        Ok(TileCoord {
            z: z as u8,
            x: x as u32,
            y: y as u32,
        })
    }

    /// Bounds in Web Mercator metres (EPSG:3857).
    pub fn mercator_bounds(&self) -> Bounds {
        let b = grid().xy_bounds(&Xyz::new(self.x as u64, self.y as u64, self.z));
        Bounds {
            minx: b.left,
            miny: b.bottom,
            maxx: b.right,
            maxy: b.top,
        }
    }

    /// Bounds in lon/lat degrees (EPSG:4326).
    pub fn lonlat_bounds(&self) -> Bounds {
        let m = self.mercator_bounds();
        let (minx, miny) = mercator_to_lonlat(m.minx, m.miny);
        let (maxx, maxy) = mercator_to_lonlat(m.maxx, m.maxy);
        Bounds {
            minx,
            miny,
            maxx,
            maxy,
        }
    }

    /// Width of this tile in metres.
    pub fn width_m(&self) -> f64 {
        2.0 * WORLD_HALF / (1u64 << self.z) as f64
    }

    /// Metres per tile unit at this zoom.
    pub fn unit_m(&self) -> f64 {
        self.width_m() / EXTENT as f64
    }

    /// Maps Web Mercator metres to tile units (y grows downwards), unrounded.
    pub fn to_tile_units(&self, mx: f64, my: f64) -> (f64, f64) {
        self.to_tile_transform().apply(mx, my)
    }

    /// [`TileCoord::to_tile_units`] with the tile's bounds worked out once, for many points.
    pub fn to_tile_transform(&self) -> TileTransform {
        let b = self.mercator_bounds();
        TileTransform {
            minx: b.minx,
            maxy: b.maxy,
            scale: EXTENT as f64 / (b.maxx - b.minx),
        }
    }

    /// Tiles covering a lon/lat box at one zoom.
    pub fn covering(bounds: &Bounds, z: u8) -> Vec<TileCoord> {
        let (x0, y0) = lonlat_to_tile(bounds.minx, bounds.maxy, z);
        let (x1, y1) = lonlat_to_tile(bounds.maxx, bounds.miny, z);
        let mut out = Vec::new();
        for x in x0..=x1 {
            for y in y0..=y1 {
                out.push(TileCoord { z, x, y });
            }
        }
        out
    }
}

/// Web Mercator metres to the units of one tile (see [`TileCoord::to_tile_transform`]).
#[derive(Debug, Clone, Copy)]
pub struct TileTransform {
    minx: f64,
    maxy: f64,
    scale: f64,
}

impl TileTransform {
    /// Tile units of a point, unrounded.
    #[inline]
    pub fn apply(&self, mx: f64, my: f64) -> (f64, f64) {
        ((mx - self.minx) * self.scale, (self.maxy - my) * self.scale)
    }
}

/// Projects lon/lat degrees to Web Mercator metres (as PostGIS does for EPSG:3857).
pub fn lonlat_to_mercator(lon: f64, lat: f64) -> (f64, f64) {
    let lat = lat.clamp(-MAX_LAT, MAX_LAT);
    let x = lon.to_radians() * EARTH_RADIUS;
    let y = (std::f64::consts::FRAC_PI_4 + lat.to_radians() / 2.0)
        .tan()
        .ln()
        * EARTH_RADIUS;
    (x, y)
}

/// Inverse of [`lonlat_to_mercator`].
pub fn mercator_to_lonlat(x: f64, y: f64) -> (f64, f64) {
    let lon = (x / EARTH_RADIUS).to_degrees();
    let lat = (2.0 * (y / EARTH_RADIUS).exp().atan() - std::f64::consts::FRAC_PI_2).to_degrees();
    (lon, lat)
}

/// The tile containing a lon/lat point at zoom `z`.
pub fn lonlat_to_tile(lon: f64, lat: f64, z: u8) -> (u32, u32) {
    let (mx, my) = lonlat_to_mercator(lon, lat);
    let n = (1u64 << z) as f64;
    let fx = ((mx + WORLD_HALF) / (2.0 * WORLD_HALF) * n).floor();
    let fy = ((WORLD_HALF - my) / (2.0 * WORLD_HALF) * n).floor();
    let clamp = |v: f64| v.clamp(0.0, n - 1.0) as u32;
    (clamp(fx), clamp(fy))
}

/// Parses the z, x and `y.ext` path parts of a tile URL into a tile and its extension.
pub fn parse_tile_path(
    z: &str,
    x: &str,
    y_ext: &str,
    max_zoom: u8,
) -> AppResult<(TileCoord, String)> {
    let (y, ext) = y_ext.split_once('.').ok_or_else(|| {
        AppError::bad(format!(
            "tile path part {:?} needs an extension: .mvt, .pbf or .geojson",
            crate::app::truncate(y_ext, 32)
        ))
    })?;
    let num = |name: &str, s: &str| -> AppResult<u64> {
        if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AppError::bad(format!(
                "tile {name} {:?} is not a non-negative integer",
                crate::app::truncate(s, 32)
            )));
        }
        s.parse::<u64>()
            .map_err(|_| AppError::bad(format!("tile {name} {s:?} is out of range")))
    };
    let z = num("z", z)?;
    let x = num("x", x)?;
    let y = num("y", y)?;
    let z = u32::try_from(z).map_err(|_| AppError::bad("tile z is out of range"))?;
    let tile = TileCoord::new(z, x, y, max_zoom)?;
    Ok((tile, ext.to_ascii_lowercase()))
}

/// Parses `minx,miny,maxx,maxy` in degrees, refusing inverted, out-of-range or too large boxes.
pub fn parse_bbox(text: &str, max_area: f64) -> AppResult<Bounds> {
    let parts: Vec<&str> = text.split(',').collect();
    if parts.len() != 4 {
        return Err(AppError::bad(format!(
            "bbox must be four comma-separated numbers minLon,minLat,maxLon,maxLat; got {} part(s)",
            parts.len()
        )));
    }
    let mut v = [0.0f64; 4];
    for (slot, part) in v.iter_mut().zip(&parts) {
        let n: f64 = part.trim().parse().map_err(|_| {
            AppError::bad(format!(
                "bbox value {:?} is not a number",
                crate::app::truncate(part, 32)
            ))
        })?;
        if !n.is_finite() {
            return Err(AppError::bad(format!(
                "bbox value {:?} is not finite",
                crate::app::truncate(part, 32)
            )));
        }
        *slot = n;
    }
    let [minx, miny, maxx, maxy] = v;
    if !(-180.0..=180.0).contains(&minx) || !(-180.0..=180.0).contains(&maxx) {
        return Err(AppError::bad("bbox longitudes must be within -180..180"));
    }
    if !(-90.0..=90.0).contains(&miny) || !(-90.0..=90.0).contains(&maxy) {
        return Err(AppError::bad("bbox latitudes must be within -90..90"));
    }
    if minx > maxx || miny > maxy {
        return Err(AppError::bad(
            "bbox is inverted: minLon must be <= maxLon and minLat <= maxLat",
        ));
    }
    let area = (maxx - minx) * (maxy - miny);
    if area > max_area {
        return Err(AppError::bad(format!(
            "bbox covers {area:.1} square degrees; the maximum is {max_area}"
        )));
    }
    Ok(Bounds {
        minx,
        miny,
        maxx,
        maxy,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, eps: f64) -> bool {
        (a - b).abs() < eps
    }

    #[test]
    fn known_tile_bounds() {
        // Bounds published for WebMercatorQuad (as computed by mercantile/morecantile).
        let t = TileCoord::new(0, 0, 0, 22).unwrap();
        let b = t.mercator_bounds();
        assert!(close(b.minx, -20037508.342789244, 1e-6));
        assert!(close(b.maxy, 20037508.342789244, 1e-6));
        let t = TileCoord::new(8, 41, 98, 22).unwrap();
        let g = t.lonlat_bounds();
        assert!(close(g.minx, -122.34375, 1e-9), "{g:?}");
        assert!(close(g.maxx, -120.9375, 1e-9));
        assert!(close(g.maxy, 38.82259097617712, 1e-9));
        assert!(close(g.miny, 37.71859032558816, 1e-9));
        let t = TileCoord::new(1, 1, 0, 22).unwrap();
        let b = t.mercator_bounds();
        assert!(close(b.minx, 0.0, 1e-6) && close(b.miny, 0.0, 1e-6));
    }

    #[test]
    fn projection_round_trips() {
        let (x, y) = lonlat_to_mercator(-122.4, 40.7);
        let (lon, lat) = mercator_to_lonlat(x, y);
        assert!(close(lon, -122.4, 1e-9) && close(lat, 40.7, 1e-9));
        assert_eq!(lonlat_to_tile(-121.5, 38.5, 8), (41, 98));
    }

    #[test]
    fn tile_units_run_top_left_to_bottom_right() {
        let t = TileCoord::new(8, 41, 98, 22).unwrap();
        let b = t.mercator_bounds();
        let (ux, uy) = t.to_tile_units(b.minx, b.maxy);
        assert!(close(ux, 0.0, 1e-6) && close(uy, 0.0, 1e-6));
        let (ux, uy) = t.to_tile_units(b.maxx, b.miny);
        assert!(close(ux, 4096.0, 1e-6) && close(uy, 4096.0, 1e-6));
    }

    #[test]
    fn bad_tiles_are_refused() {
        assert!(parse_tile_path("8", "41", "98.mvt", 22).is_ok());
        for (z, x, y) in [
            ("23", "0", "0.mvt"),
            ("1", "2", "0.mvt"),
            ("1", "0", "2.mvt"),
            ("a", "0", "0.mvt"),
            ("1", "-1", "0.mvt"),
            ("1", "0", "0"),
            ("99999999999", "0", "0.mvt"),
            ("", "0", "0.mvt"),
        ] {
            assert!(
                matches!(parse_tile_path(z, x, y, 22), Err(AppError::BadRequest(_))),
                "{z}/{x}/{y}"
            );
        }
    }

    #[test]
    fn bbox_rules() {
        assert!(parse_bbox("-122.5,37.5,-121,39", 3600.0).is_ok());
        for b in [
            "1,2,3",
            "a,1,2,3",
            "-121,37,-122,39",
            "-190,0,0,1",
            "0,-95,1,1",
            "NaN,0,1,1",
            "-180,-90,180,90",
        ] {
            assert!(parse_bbox(b, 3600.0).is_err(), "{b}");
        }
    }
}
