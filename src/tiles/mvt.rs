//! Turning Web Mercator geometries into MVT features, the way PostGIS's `ST_AsMVTGeom` does.
//!
//! The memory source must give the same tiles as PostGIS, so this follows its steps in its
//! order: simplify (Douglas-Peucker, in metres, before anything else, as our SQL does), drop
//! lines and polygons smaller than half a tile unit, move into tile units, clip to the buffered
//! tile, snap to the integer grid, drop what collapsed, and orient polygon rings as MVT 2 wants.
//! Then the MVT commands, written as `geozero`'s writer writes them (a test compares the two),
//! and the layers with their key and value tables.

use crate::config::{LayerConfig, PropertyType};
use crate::tiles::grid::{BUFFER, EXTENT, TileCoord, TileTransform};
use geo::algorithm::bool_ops::FillRule;
use geo::{
    BooleanOps, BoundingRect, Coord, Geometry, LineString, MapCoords, MultiLineString,
    MultiPolygon, Point, Polygon, Rect, Simplify,
};
use geozero::mvt::tile;
use serde_json::Value;

/// Fill rule of the polygon overlay (clipping and repair); measured closest to PostGIS.
const POLYGON_FILL: FillRule = FillRule::NonZero;

/// Geometry of one feature in integer tile units, or `None` when nothing is left in the tile.
pub fn tile_geometry(
    geometry: &Geometry<f64>,
    tile: &TileCoord,
    simplify_units: f64,
) -> Option<Geometry<f64>> {
    to_tile(
        &generalise(geometry, tile.z, simplify_units)?,
        &tile.to_tile_transform(),
    )
}

/// The zoom-dependent part of [`tile_geometry`] (Web Mercator in, Web Mercator out): the
/// layer's simplification, the drop of sub-unit specks, and `ST_AsMVTGeom`'s own one-unit
/// reduction. The same for every tile of a zoom, so callers may keep it.
pub fn generalise(geometry: &Geometry<f64>, z: u8, simplify_units: f64) -> Option<Geometry<f64>> {
    let unit = unit_at(z);
    if matches!(geometry, Geometry::Point(_) | Geometry::MultiPoint(_)) {
        return Some(geometry.clone());
    }
    let simplified;
    let geometry = if simplify_units > 0.0 {
        simplified = simplify(geometry, simplify_units * unit);
        &simplified
    } else {
        geometry
    };
    let r = geometry.bounding_rect()?;
    if r.width() < unit / 2.0 && r.height() < unit / 2.0 {
        return None;
    }
    // ST_AsMVTGeom drops points closer than one tile unit, then simplifies by one unit.
    Some(simplify(&remove_repeated(geometry, unit), unit))
}

/// The tile-dependent part of [`tile_geometry`]: snap, clip to the buffer, repair, orient.
/// `transform` is the tile's ([`TileCoord::to_tile_transform`]), worked out once per tile.
pub fn to_tile(geometry: &Geometry<f64>, transform: &TileTransform) -> Option<Geometry<f64>> {
    // PostGIS snaps to the integer grid before clipping (and again after): so do we.
    let local = geometry.map_coords(|c| {
        let (x, y) = transform.apply(c.x, c.y);
        Coord {
            x: x.round(),
            y: y.round(),
        }
    });
    let clip = clip_rect();
    let (lo, hi) = (clip.min().x, clip.max().x);
    match local {
        Geometry::Point(p) => snap_point(p, lo, hi).map(Geometry::Point),
        Geometry::MultiPoint(mp) => {
            let pts: Vec<Point<f64>> =
                mp.0.into_iter()
                    .filter_map(|p| snap_point(p, lo, hi))
                    .collect();
            (!pts.is_empty()).then(|| Geometry::MultiPoint(pts.into()))
        }
        Geometry::LineString(ls) => clip_lines(MultiLineString::new(vec![ls]), &clip),
        Geometry::MultiLineString(mls) => clip_lines(mls, &clip),
        Geometry::Polygon(p) => clip_polygons(MultiPolygon::new(vec![p]), &clip),
        Geometry::MultiPolygon(mp) => clip_polygons(mp, &clip),
        _ => None,
    }
}

/// One tile unit at zoom `z`, in Web Mercator metres.
fn unit_at(z: u8) -> f64 {
    2.0 * crate::tiles::grid::WORLD_HALF / (1u64 << z) as f64 / EXTENT as f64
}

/// The buffered tile, in tile units: what clipping keeps.
fn clip_rect() -> Rect<f64> {
    let lo = -(BUFFER as f64);
    let hi = (EXTENT + BUFFER) as f64;
    Rect::new(Coord { x: lo, y: lo }, Coord { x: hi, y: hi })
}

/// Working space of [`tile_feature`], reused across the features of a tile so that a line
/// costs no allocation but its own commands.
#[derive(Default)]
pub struct Scratch {
    simplified: Vec<Coord<f64>>,
    simplified_ends: Vec<usize>,
    reduced: Vec<Coord<f64>>,
    local: Vec<Coord<f64>>,
    local_ends: Vec<usize>,
    piece: Vec<Coord<f64>>,
    snapped: Vec<Coord<f64>>,
}

/// One feature from Web Mercator to MVT geometry commands (into `out`, cleared first) and
/// its geometry type: [`tile_geometry`] then [`commands`], with the same result. Lines, most
/// of the features of a busy tile, go straight from coordinates to commands without
/// intermediate geometries.
pub fn tile_feature(
    merc: &Geometry<f64>,
    z: u8,
    simplify_units: f64,
    transform: &TileTransform,
    scratch: &mut Scratch,
    out: &mut Vec<u32>,
) -> Option<tile::GeomType> {
    match merc {
        Geometry::LineString(l) => line_feature(
            std::slice::from_ref(l),
            z,
            simplify_units,
            transform,
            scratch,
            out,
        ),
        Geometry::MultiLineString(m) => {
            line_feature(&m.0, z, simplify_units, transform, scratch, out)
        }
        other => commands(
            &to_tile(&generalise(other, z, simplify_units)?, transform)?,
            out,
        ),
    }
}

/// [`tile_feature`] for the parts of a line: [`generalise`], [`to_tile`] and [`commands`]
/// step for step, on slices of the scratch space.
fn line_feature(
    parts: &[LineString<f64>],
    z: u8,
    simplify_units: f64,
    transform: &TileTransform,
    s: &mut Scratch,
    geometry: &mut Vec<u32>,
) -> Option<tile::GeomType> {
    geometry.clear();
    let unit = unit_at(z);
    // The layer's simplification, then the drop of specks.
    s.simplified.clear();
    s.simplified_ends.clear();
    for p in parts {
        simplify_into(&p.0, simplify_units * unit, &mut s.simplified);
        s.simplified_ends.push(s.simplified.len());
    }
    let (mut min, mut max) = (s.simplified.first()?.to_owned(), s.simplified[0]);
    for c in &s.simplified {
        (min.x, min.y) = (min.x.min(c.x), min.y.min(c.y));
        (max.x, max.y) = (max.x.max(c.x), max.y.max(c.y));
    }
    if max.x - min.x < unit / 2.0 && max.y - min.y < unit / 2.0 {
        return None;
    }
    // ST_AsMVTGeom's one-unit reduction, then tile units on the integer grid.
    let clip = clip_rect();
    let mut inside = true;
    s.local.clear();
    s.local_ends.clear();
    let mut start = 0;
    for &end in &s.simplified_ends {
        s.reduced.clear();
        remove_repeated_into(&s.simplified[start..end], unit, 2, &mut s.reduced);
        let from = s.local.len();
        simplify_into(&s.reduced, unit, &mut s.local);
        for c in &mut s.local[from..] {
            let (x, y) = transform.apply(c.x, c.y);
            *c = Coord {
                x: x.round(),
                y: y.round(),
            };
            inside &= in_rect(c, &clip);
        }
        s.local_ends.push(s.local.len());
        start = end;
    }
    // Clip, snap again, and write the pieces.
    let mut cursor = (0, 0);
    let mut start = 0;
    for &end in &s.local_ends {
        let part = &s.local[start..end];
        start = end;
        if inside {
            snap_into(part, &mut s.snapped);
            line_commands(&s.snapped, &mut cursor, geometry);
        } else {
            let snapped = &mut s.snapped;
            clip_polyline_each(part, &clip, &mut s.piece, |piece| {
                snap_into(piece, snapped);
                line_commands(snapped, &mut cursor, geometry);
            });
        }
    }
    (!geometry.is_empty()).then_some(tile::GeomType::Linestring)
}

const MOVE_TO: u32 = 1;
const LINE_TO: u32 = 2;
const CLOSE_PATH: u32 = 7;

/// A command integer of MVT 2 (4.3.1).
fn command(id: u32, count: usize) -> u32 {
    (id & 0x7) | ((count as u32) << 3)
}

/// Appends the zigzag-encoded move from `cursor` to `c` (4.3.2) and moves the cursor.
fn push_delta(c: Coord<f64>, cursor: &mut (i32, i32), out: &mut Vec<u32>) {
    let (x, y) = (c.x as i32, c.y as i32);
    let zigzag = |v: i32| ((v << 1) ^ (v >> 31)) as u32;
    out.push(zigzag(x.saturating_sub(cursor.0)));
    out.push(zigzag(y.saturating_sub(cursor.1)));
    *cursor = (x, y);
}

/// MoveTo the first point, LineTo the rest; nothing for fewer than two points.
fn line_commands(pts: &[Coord<f64>], cursor: &mut (i32, i32), out: &mut Vec<u32>) -> bool {
    let Some((first, rest)) = pts.split_first().filter(|(_, r)| !r.is_empty()) else {
        return false;
    };
    out.push(command(MOVE_TO, 1));
    push_delta(*first, cursor, out);
    out.push(command(LINE_TO, rest.len()));
    for c in rest {
        push_delta(*c, cursor, out);
    }
    true
}

/// A closed ring: its points but the closing one, then ClosePath; `false` below three points.
fn ring_commands(ring: &LineString<f64>, cursor: &mut (i32, i32), out: &mut Vec<u32>) -> bool {
    let pts = &ring.0;
    if pts.len() < 3 {
        return false;
    }
    line_commands(&pts[..pts.len() - 1], cursor, out);
    out.push(command(CLOSE_PATH, 1));
    true
}

/// The MVT geometry commands (into `out`, cleared first) and type of a geometry already in
/// tile units, as geozero's writer makes them; `None` for what it cannot encode (a line of
/// one point, a ring of two).
pub fn commands(g: &Geometry<f64>, out: &mut Vec<u32>) -> Option<tile::GeomType> {
    out.clear();
    let mut cursor = (0, 0);
    let polygon = |p: &Polygon<f64>, cursor: &mut (i32, i32), out: &mut Vec<u32>| {
        ring_commands(p.exterior(), cursor, out)
            && p.interiors().iter().all(|r| ring_commands(r, cursor, out))
    };
    let kind = match g {
        Geometry::Point(p) => {
            out.push(command(MOVE_TO, 1));
            push_delta(p.0, &mut cursor, out);
            tile::GeomType::Point
        }
        Geometry::MultiPoint(mp) => {
            out.push(command(MOVE_TO, mp.0.len()));
            for p in &mp.0 {
                push_delta(p.0, &mut cursor, out);
            }
            tile::GeomType::Point
        }
        Geometry::LineString(l) => {
            line_commands(&l.0, &mut cursor, out).then_some(())?;
            tile::GeomType::Linestring
        }
        Geometry::MultiLineString(m) => {
            for l in &m.0 {
                line_commands(&l.0, &mut cursor, out).then_some(())?;
            }
            tile::GeomType::Linestring
        }
        Geometry::Polygon(p) => {
            polygon(p, &mut cursor, out).then_some(())?;
            tile::GeomType::Polygon
        }
        Geometry::MultiPolygon(mp) => {
            for p in &mp.0 {
                polygon(p, &mut cursor, out).then_some(())?;
            }
            tile::GeomType::Polygon
        }
        _ => return None,
    };
    Some(kind)
}

/// Douglas-Peucker as PostGIS's `ST_Simplify` does it: rings that fall below four points are
/// dropped, and a polygon whose exterior collapses is dropped whole.
fn simplify(g: &Geometry<f64>, tolerance: f64) -> Geometry<f64> {
    match g {
        Geometry::LineString(l) => Geometry::LineString(simplify_line(l, tolerance)),
        Geometry::MultiLineString(l) => Geometry::MultiLineString(MultiLineString::new(
            l.0.iter().map(|l| simplify_line(l, tolerance)).collect(),
        )),
        Geometry::Polygon(p) => Geometry::MultiPolygon(MultiPolygon::new(
            simplify_polygon(p, tolerance).into_iter().collect(),
        )),
        Geometry::MultiPolygon(mp) => Geometry::MultiPolygon(MultiPolygon::new(
            mp.0.iter()
                .filter_map(|p| simplify_polygon(p, tolerance))
                .collect(),
        )),
        other => other.clone(),
    }
}

/// `geo`'s Douglas-Peucker on a line (the same distances, the same points kept).
fn simplify_line(l: &LineString<f64>, tolerance: f64) -> LineString<f64> {
    if tolerance <= 0.0 || l.0.len() < 3 {
        return l.clone();
    }
    if l.0.len() > 64 {
        return l.simplify(tolerance);
    }
    let mut out = Vec::with_capacity(l.0.len());
    simplify_into(&l.0, tolerance, &mut out);
    LineString::new(out)
}

/// [`simplify_line`] on a slice, appending the kept points to `out`, without `geo`'s
/// per-step allocations: the kept points of a line of up to 64 are marked in one word. Longer
/// lines go to `geo` itself.
fn simplify_into(pts: &[Coord<f64>], tolerance: f64, out: &mut Vec<Coord<f64>>) {
    let n = pts.len();
    if tolerance <= 0.0 || n < 3 {
        out.extend_from_slice(pts);
        return;
    }
    if n > 64 {
        out.extend(LineString::new(pts.to_vec()).simplify(tolerance).0);
        return;
    }
    let mut keep: u64 = 1 | (1 << (n - 1));
    let mut spans = [(0usize, 0usize); 64];
    spans[0] = (0, n - 1);
    let mut pending = 1;
    while pending > 0 {
        pending -= 1;
        let (a, b) = spans[pending];
        if b - a < 2 {
            continue;
        }
        let chord = Chord::new(pts[a], pts[b]);
        let (mut far, mut far_d) = (a + 1, 0.0);
        for (i, p) in pts.iter().enumerate().take(b).skip(a + 1) {
            let d = chord.distance(*p);
            if d >= far_d {
                (far, far_d) = (i, d);
            }
        }
        if far_d > tolerance {
            keep |= 1 << far;
            // At most one span per kept point is pending, so 64 places suffice.
            spans[pending] = (a, far);
            spans[pending + 1] = (far, b);
            pending += 2;
        }
    }
    out.extend(
        pts.iter()
            .enumerate()
            .filter(|(i, _)| keep & (1 << i) != 0)
            .map(|(_, p)| *p),
    );
}

/// A segment whose distance to many points is wanted: `geo`'s point-to-segment distance
/// (`line_segment_distance`), the same operations in the same order so the same bits, with the
/// segment's length worked out once instead of once per point.
struct Chord {
    start: Coord<f64>,
    end: Coord<f64>,
    dx: f64,
    dy: f64,
    d_squared: f64,
    length: f64,
}

impl Chord {
    fn new(start: Coord<f64>, end: Coord<f64>) -> Chord {
        let (dx, dy) = (end.x - start.x, end.y - start.y);
        Chord {
            start,
            end,
            dx,
            dy,
            d_squared: dx * dx + dy * dy,
            length: dx.hypot(dy),
        }
    }

    fn distance(&self, p: Coord<f64>) -> f64 {
        let to = |c: Coord<f64>| (c.x - p.x).hypot(c.y - p.y);
        if self.start == self.end {
            return to(self.start);
        }
        let (start, dx, dy) = (self.start, self.dx, self.dy);
        let r = ((p.x - start.x) * dx + (p.y - start.y) * dy) / self.d_squared;
        if r <= 0.0 {
            return to(start);
        }
        if r >= 1.0 {
            return to(self.end);
        }
        let s = ((start.y - p.y) * dx - (start.x - p.x) * dy) / self.d_squared;
        s.abs() * self.length
    }
}

/// PostGIS's `remove_repeated_points` with a tolerance: a point within `tol` of the last kept
/// point goes, the last point always stays (replacing its near predecessor).
fn remove_repeated(g: &Geometry<f64>, tol: f64) -> Geometry<f64> {
    let line = |l: &LineString<f64>, min: usize| -> LineString<f64> {
        let mut out = Vec::with_capacity(l.0.len());
        remove_repeated_into(&l.0, tol, min, &mut out);
        LineString::new(out)
    };
    let poly = |p: &Polygon<f64>| {
        Polygon::new(
            line(p.exterior(), 4),
            p.interiors().iter().map(|r| line(r, 4)).collect(),
        )
    };
    match g {
        Geometry::LineString(l) => Geometry::LineString(line(l, 2)),
        Geometry::MultiLineString(m) => Geometry::MultiLineString(MultiLineString::new(
            m.0.iter().map(|l| line(l, 2)).collect(),
        )),
        Geometry::Polygon(p) => Geometry::Polygon(poly(p)),
        Geometry::MultiPolygon(m) => {
            Geometry::MultiPolygon(MultiPolygon::new(m.0.iter().map(poly).collect()))
        }
        other => other.clone(),
    }
}

/// [`remove_repeated`] on one line or ring of at least `min` points, appended to `out`.
fn remove_repeated_into(pts: &[Coord<f64>], tol: f64, min: usize, out: &mut Vec<Coord<f64>>) {
    let n = pts.len();
    if n <= min {
        out.extend_from_slice(pts);
        return;
    }
    let tolsq = tol * tol;
    let start = out.len();
    out.push(pts[0]);
    for (i, p) in pts.iter().enumerate().skip(1) {
        let last_point = i == n - 1;
        let kept = out.len() - start;
        if n + kept > min + i {
            let l = out[out.len() - 1];
            let dsq = (l.x - p.x).powi(2) + (l.y - p.y).powi(2);
            if !last_point && dsq <= tolsq {
                continue;
            }
            if last_point && kept > 1 && dsq <= tolsq {
                out.pop();
            }
        }
        out.push(*p);
    }
}

fn simplify_polygon(p: &Polygon<f64>, tolerance: f64) -> Option<Polygon<f64>> {
    let ring = |r: &LineString<f64>| Some(r.simplify(tolerance)).filter(|r| r.0.len() >= 4);
    let exterior = ring(p.exterior())?;
    Some(Polygon::new(
        exterior,
        p.interiors().iter().filter_map(ring).collect(),
    ))
}

fn snap_point(p: Point<f64>, lo: f64, hi: f64) -> Option<Point<f64>> {
    let (x, y) = (p.x().round(), p.y().round());
    (x >= lo && x <= hi && y >= lo && y <= hi).then(|| Point::new(x, y))
}

fn snap_ring(ls: &LineString<f64>) -> Vec<Coord<f64>> {
    let mut out: Vec<Coord<f64>> = Vec::with_capacity(ls.0.len());
    snap_into(&ls.0, &mut out);
    out
}

/// Rounds points to the integer grid into `out` (cleared first), dropping repeats.
fn snap_into(pts: &[Coord<f64>], out: &mut Vec<Coord<f64>>) {
    out.clear();
    for c in pts {
        let s = Coord {
            x: c.x.round(),
            y: c.y.round(),
        };
        if out.last() != Some(&s) {
            out.push(s);
        }
    }
}

fn clip_lines(mls: MultiLineString<f64>, clip: &Rect<f64>) -> Option<Geometry<f64>> {
    let inside = mls.0.iter().all(|l| l.0.iter().all(|c| in_rect(c, clip)));
    let clipped = if inside {
        mls.0
    } else {
        mls.0.iter().flat_map(|l| clip_polyline(l, clip)).collect()
    };
    let lines: Vec<LineString<f64>> = clipped
        .iter()
        .map(snap_ring)
        .filter(|c| c.len() >= 2)
        .map(LineString::new)
        .collect();
    match lines.len() {
        0 => None,
        1 => lines.into_iter().next().map(Geometry::LineString),
        _ => Some(Geometry::MultiLineString(MultiLineString::new(lines))),
    }
}

/// Liang-Barsky clipping of each segment; consecutive pieces that join stay one line.
fn clip_polyline(line: &LineString<f64>, r: &Rect<f64>) -> Vec<LineString<f64>> {
    let mut out = Vec::new();
    clip_polyline_each(&line.0, r, &mut Vec::new(), |piece| {
        out.push(LineString::new(piece.to_vec()))
    });
    out
}

/// [`clip_polyline`] calling `piece` with each piece in turn; `current` is working space.
fn clip_polyline_each(
    pts: &[Coord<f64>],
    r: &Rect<f64>,
    current: &mut Vec<Coord<f64>>,
    mut piece: impl FnMut(&[Coord<f64>]),
) {
    current.clear();
    for w in pts.windows(2) {
        match clip_segment(w[0], w[1], r) {
            Some((a, b)) => {
                if current.last() != Some(&a) {
                    if current.len() >= 2 {
                        piece(current);
                    }
                    current.clear();
                    current.push(a);
                }
                current.push(b);
            }
            None => {
                if current.len() >= 2 {
                    piece(current);
                }
                current.clear();
            }
        }
    }
    if current.len() >= 2 {
        piece(current);
    }
}

/// The part of segment `a`-`b` inside `r`, if any.
fn clip_segment(a: Coord<f64>, b: Coord<f64>, r: &Rect<f64>) -> Option<(Coord<f64>, Coord<f64>)> {
    let (dx, dy) = (b.x - a.x, b.y - a.y);
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (p, q) in [
        (-dx, a.x - r.min().x),
        (dx, r.max().x - a.x),
        (-dy, a.y - r.min().y),
        (dy, r.max().y - a.y),
    ] {
        if p == 0.0 {
            if q < 0.0 {
                return None;
            }
        } else {
            let t = q / p;
            if p < 0.0 {
                t0 = t0.max(t);
            } else {
                t1 = t1.min(t);
            }
            if t0 > t1 {
                return None;
            }
        }
    }
    let at = |t: f64| Coord {
        x: a.x + t * dx,
        y: a.y + t * dy,
    };
    Some((at(t0), at(t1)))
}

fn in_rect(c: &Coord<f64>, r: &Rect<f64>) -> bool {
    c.x >= r.min().x && c.x <= r.max().x && c.y >= r.min().y && c.y <= r.max().y
}

fn clip_polygons(mp: MultiPolygon<f64>, clip: &Rect<f64>) -> Option<Geometry<f64>> {
    // Always through the overlay, even when inside the tile: like PostGIS's wagyu step it
    // also repairs what snapping broke (self-touching or crossing rings).
    let mp = MultiPolygon::new(mp.0.iter().map(snap_round).collect());
    let clipped = mp.intersection_with_fill_rule(&clip.to_polygon(), POLYGON_FILL);
    let mut polys = Vec::new();
    for p in clipped.0 {
        let Some(exterior) = snap_closed_ring(p.exterior()) else {
            continue;
        };
        let interiors = p.interiors().iter().filter_map(snap_closed_ring).collect();
        polys.push(orient(Polygon::new(exterior, interiors)));
    }
    match polys.len() {
        0 => None,
        1 => polys.into_iter().next().map(Geometry::Polygon),
        _ => Some(Geometry::MultiPolygon(MultiPolygon::new(polys))),
    }
}

fn snap_closed_ring(ls: &LineString<f64>) -> Option<LineString<f64>> {
    let mut c = snap_ring(ls);
    if c.first() != c.last()
        && let Some(first) = c.first().copied()
    {
        c.push(first);
    }
    let ring = LineString::new(c);
    (ring.0.len() >= 4 && signed_area(&ring) != 0.0).then_some(ring)
}

/// Hot-pixel snap rounding, as wagyu does: an edge that passes through the pixel of another
/// vertex is bent through that vertex, so a spike thinner than a pixel becomes a zero-area
/// back-track that the overlay removes instead of a sliver it would keep.
fn snap_round(p: &Polygon<f64>) -> Polygon<f64> {
    // Vertices sorted by x, so each edge looks only at those within its x range.
    let mut vertices: Vec<Coord<f64>> = p
        .exterior()
        .0
        .iter()
        .chain(p.interiors().iter().flat_map(|r| r.0.iter()))
        .copied()
        .collect();
    vertices.sort_by(|a, b| a.x.total_cmp(&b.x).then(a.y.total_cmp(&b.y)));
    vertices.dedup();
    let ring = |r: &LineString<f64>| -> LineString<f64> {
        let mut out: Vec<Coord<f64>> = Vec::with_capacity(r.0.len());
        for w in r.0.windows(2) {
            let (a, b) = (w[0], w[1]);
            out.push(a);
            let (dx, dy) = (b.x - a.x, b.y - a.y);
            let len2 = dx * dx + dy * dy;
            if len2 == 0.0 {
                continue;
            }
            let (minx, maxx) = (a.x.min(b.x) - 0.5, a.x.max(b.x) + 0.5);
            let (miny, maxy) = (a.y.min(b.y) - 0.5, a.y.max(b.y) + 0.5);
            let start = vertices.partition_point(|v| v.x < minx);
            let mut hits: Vec<(f64, Coord<f64>)> = vertices[start..]
                .iter()
                .take_while(|v| v.x <= maxx)
                .filter(|v| **v != a && **v != b && v.y >= miny && v.y <= maxy)
                .filter_map(|v| {
                    let t = ((v.x - a.x) * dx + (v.y - a.y) * dy) / len2;
                    if t <= 0.0 || t >= 1.0 {
                        return None;
                    }
                    let (px, py) = (a.x + t * dx, a.y + t * dy);
                    ((px - v.x).abs() < 0.5 && (py - v.y).abs() < 0.5).then_some((t, *v))
                })
                .collect();
            hits.sort_by(|x, y| x.0.total_cmp(&y.0));
            out.extend(hits.into_iter().map(|(_, v)| v));
        }
        if let Some(last) = r.0.last() {
            out.push(*last);
        }
        LineString::new(out)
    };
    Polygon::new(ring(p.exterior()), p.interiors().iter().map(ring).collect())
}

/// Twice the signed area in tile units (y down): positive means clockwise on screen.
fn signed_area(ring: &LineString<f64>) -> f64 {
    ring.0
        .windows(2)
        .map(|w| w[0].x * w[1].y - w[1].x * w[0].y)
        .sum()
}

/// MVT 2: exterior rings positive area in tile coordinates, interior rings negative.
fn orient(p: Polygon<f64>) -> Polygon<f64> {
    let (mut ext, ints) = p.into_inner();
    if signed_area(&ext) < 0.0 {
        ext.0.reverse();
    }
    let ints = ints
        .into_iter()
        .map(|mut r| {
            if signed_area(&r) > 0.0 {
                r.0.reverse();
            }
            r
        })
        .collect();
    Polygon::new(ext, ints)
}

/// One layer of a tile, written straight to protobuf as its features come: each feature's
/// geometry ([`tile_feature`]), id and tags are encoded once, into the layer's bytes, with the
/// field order and encoding `prost` gives the MVT messages (a test decodes and re-encodes).
pub struct LayerEncoder<'l, 'v> {
    name: &'l str,
    tags: Tags<'l, 'v>,
    z: u8,
    simplify_units: f64,
    transform: TileTransform,
    scratch: Scratch,
    geometry: Vec<u32>,
    tag_list: Vec<u32>,
    features: Vec<u8>,
}

/// Protobuf wire types.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;

/// A field's key byte (every field number here is below 16).
fn field(number: u8, wire: u8) -> u8 {
    (number << 3) | wire
}

/// Appends a protobuf varint.
fn put_varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Bytes of a packed repeated `uint32` field's payload.
fn packed_len(values: &[u32]) -> usize {
    values
        .iter()
        .map(|v| prost::encoding::encoded_len_varint(u64::from(*v)))
        .sum()
}

/// Appends a packed repeated `uint32` field, if it has values (as prost does).
fn put_packed(number: u8, values: &[u32], len: usize, out: &mut Vec<u8>) {
    if values.is_empty() {
        return;
    }
    out.push(field(number, LEN));
    put_varint(len as u64, out);
    for v in values {
        put_varint(u64::from(*v), out);
    }
}

/// Bytes a packed field takes whole: key, length, payload; nothing when empty.
fn packed_field_len(values: &[u32], len: usize) -> usize {
    if values.is_empty() {
        0
    } else {
        1 + prost::encoding::encoded_len_varint(len as u64) + len
    }
}

impl<'l, 'v> LayerEncoder<'l, 'v> {
    /// An empty layer of `tile`, with room for about `features` features.
    pub fn new(
        layer: &'l LayerConfig,
        tile: &TileCoord,
        transform: TileTransform,
        features: usize,
    ) -> Self {
        LayerEncoder {
            name: &layer.name,
            tags: Tags::new(layer, features),
            z: tile.z,
            simplify_units: layer.simplify_units(),
            transform,
            scratch: Scratch::default(),
            geometry: Vec::new(),
            tag_list: Vec::new(),
            features: Vec::new(),
        }
    }

    /// Adds a feature given in Web Mercator: generalised, clipped and snapped for the tile
    /// ([`tile_feature`]); nothing when nothing of it is left in the tile.
    pub fn add_mercator(&mut self, id: i64, merc: &Geometry<f64>, props: &'v [Value]) {
        if let Some(kind) = tile_feature(
            merc,
            self.z,
            self.simplify_units,
            &self.transform,
            &mut self.scratch,
            &mut self.geometry,
        ) {
            self.write_feature(id, kind, props);
        }
    }

    /// Adds a feature already generalised for this zoom ([`generalise`]): clipped and
    /// snapped for the tile ([`to_tile`]).
    pub fn add_generalised(&mut self, id: i64, g: &Geometry<f64>, props: &'v [Value]) {
        if let Some(kind) =
            to_tile(g, &self.transform).and_then(|g| commands(&g, &mut self.geometry))
        {
            self.write_feature(id, kind, props);
        }
    }

    /// Writes one `Feature` message (id, tags, type, geometry) into the layer's bytes.
    fn write_feature(&mut self, id: i64, kind: tile::GeomType, props: &'v [Value]) {
        self.tag_list.clear();
        self.tags.push(0, int_value(id), &mut self.tag_list);
        for (i, value) in props.iter().enumerate() {
            if let Some(value) = self
                .tags
                .kind(i + 1)
                .and_then(|kind| tile_value(value, kind))
            {
                self.tags.push(i + 1, value, &mut self.tag_list);
            }
        }
        let id = u64::try_from(id).ok();
        let kind = kind as u64;
        let (tags_len, geometry_len) = (packed_len(&self.tag_list), packed_len(&self.geometry));
        let body = id.map_or(0, |id| 1 + prost::encoding::encoded_len_varint(id))
            + packed_field_len(&self.tag_list, tags_len)
            + 1
            + prost::encoding::encoded_len_varint(kind)
            + packed_field_len(&self.geometry, geometry_len);
        let out = &mut self.features;
        out.reserve(body + 6);
        out.push(field(2, LEN));
        put_varint(body as u64, out);
        if let Some(id) = id {
            out.push(field(1, VARINT));
            put_varint(id, out);
        }
        put_packed(2, &self.tag_list, tags_len, out);
        out.push(field(3, VARINT));
        put_varint(kind, out);
        put_packed(4, &self.geometry, geometry_len, out);
    }

    /// Appends the layer to a tile's bytes (a `Tile.layers` field); nothing when no feature
    /// made it into the tile.
    pub fn finish(self, tile: &mut Vec<u8>) {
        if self.features.is_empty() {
            return;
        }
        let mut rest = Vec::new();
        for key in &self.tags.keys {
            rest.push(field(3, LEN));
            put_varint(key.len() as u64, &mut rest);
            rest.extend_from_slice(key.as_bytes());
        }
        for value in &self.tags.values {
            value.write(&mut rest);
        }
        rest.push(field(5, VARINT));
        put_varint(u64::from(EXTENT), &mut rest);
        rest.push(field(15, VARINT)); // version
        put_varint(2, &mut rest);
        let name = self.name.as_bytes();
        let layer = 1
            + prost::encoding::encoded_len_varint(name.len() as u64)
            + name.len()
            + self.features.len()
            + rest.len();
        tile.push(field(3, LEN));
        put_varint(layer as u64, tile);
        tile.push(field(1, LEN));
        put_varint(name.len() as u64, tile);
        tile.extend_from_slice(name);
        tile.extend_from_slice(&self.features);
        tile.extend_from_slice(&rest);
    }
}

/// The key and value tables of one layer. Keys are the layer's fixed list (`id`, then its
/// properties), each entered on first use; equal values share one entry, found without copying
/// the feature's value (a string is copied once, when it first enters the table).
struct Tags<'l, 'v> {
    names: Vec<&'l str>,
    kinds: Vec<PropertyType>,
    key_of: Vec<Option<u32>>,
    keys: Vec<String>,
    values: Vec<TagValue<'v>>,
    value_of: std::collections::HashMap<TagValue<'v>, u32, foldhash::fast::RandomState>,
}

impl<'l, 'v> Tags<'l, 'v> {
    /// Tables for a layer, with room for the values of about `features` features (each has
    /// its own id, at least).
    fn new(layer: &'l LayerConfig, features: usize) -> Tags<'l, 'v> {
        let names: Vec<&str> = std::iter::once("id")
            .chain(layer.properties.iter().map(|p| p.name.as_str()))
            .collect();
        Tags {
            kinds: layer.properties.iter().map(|p| p.kind).collect(),
            key_of: vec![None; names.len()],
            names,
            keys: Vec::new(),
            values: Vec::with_capacity(features),
            value_of: std::collections::HashMap::with_capacity_and_hasher(
                features,
                Default::default(),
            ),
        }
    }

    /// The type of the property in key slot `slot` (1 and up; slot 0 is the id).
    fn kind(&self, slot: usize) -> Option<PropertyType> {
        self.kinds.get(slot.checked_sub(1)?).copied()
    }

    /// Adds the tag `(key number slot, value)` to a feature's tag list.
    fn push(&mut self, slot: usize, value: TagValue<'v>, tags: &mut Vec<u32>) {
        let key = *self.key_of[slot].get_or_insert_with(|| {
            self.keys.push(self.names[slot].to_string());
            (self.keys.len() - 1) as u32
        });
        let value = match self.value_of.entry(value) {
            std::collections::hash_map::Entry::Occupied(e) => *e.get(),
            std::collections::hash_map::Entry::Vacant(e) => {
                self.values.push(e.key().clone());
                *e.insert((self.values.len() - 1) as u32)
            }
        };
        tags.extend([key, value]);
    }
}

/// A tag value as the tables compare it: a string borrowed from the feature where it can be,
/// a double by its bits.
#[derive(Clone, PartialEq, Eq, Hash)]
enum TagValue<'v> {
    Str(std::borrow::Cow<'v, str>),
    Double(u64),
    Uint(u64),
    Sint(i64),
    Bool(bool),
}

impl TagValue<'_> {
    /// Appends the value as a `Layer.values` field: a `Value` message with the one field its
    /// type uses (1 string, 3 double, 5 uint64, 6 sint64, 7 bool).
    fn write(&self, out: &mut Vec<u8>) {
        use prost::encoding::encoded_len_varint as len_of;
        let zigzag = |i: i64| ((i << 1) ^ (i >> 63)) as u64;
        let len = match self {
            TagValue::Str(s) => 1 + len_of(s.len() as u64) + s.len(),
            TagValue::Double(_) => 9,
            TagValue::Uint(u) => 1 + len_of(*u),
            TagValue::Sint(i) => 1 + len_of(zigzag(*i)),
            TagValue::Bool(_) => 2,
        };
        out.push(field(4, LEN));
        put_varint(len as u64, out);
        match self {
            TagValue::Str(s) => {
                out.push(field(1, LEN));
                put_varint(s.len() as u64, out);
                out.extend_from_slice(s.as_bytes());
            }
            TagValue::Double(bits) => {
                out.push(field(3, FIXED64));
                out.extend_from_slice(&bits.to_le_bytes());
            }
            TagValue::Uint(u) => {
                out.push(field(5, VARINT));
                put_varint(*u, out);
            }
            TagValue::Sint(i) => {
                out.push(field(6, VARINT));
                put_varint(zigzag(*i), out);
            }
            TagValue::Bool(b) => {
                out.push(field(7, VARINT));
                out.push(u8::from(*b));
            }
        }
    }
}

fn int_value<'v>(i: i64) -> TagValue<'v> {
    if i >= 0 {
        TagValue::Uint(i as u64)
    } else {
        TagValue::Sint(i)
    }
}

fn tile_value(v: &Value, kind: PropertyType) -> Option<TagValue<'_>> {
    use std::borrow::Cow;
    match (kind, v) {
        (_, Value::Null) => None,
        (PropertyType::String, Value::String(s)) => Some(TagValue::Str(Cow::Borrowed(s))),
        (PropertyType::Number, Value::Number(n)) => {
            n.as_f64().map(|f| TagValue::Double(f.to_bits()))
        }
        (PropertyType::Integer, Value::Number(n)) => n.as_i64().map(int_value),
        (PropertyType::Boolean, Value::Bool(b)) => Some(TagValue::Bool(*b)),
        (_, other) => Some(TagValue::Str(Cow::Owned(other.to_string()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tiles::grid::lonlat_to_mercator;
    use geozero::mvt::{Message, Tile};

    #[test]
    fn line_simplification_keeps_the_points_geo_keeps() {
        let mut next = rng(7);
        for case in 0..5000 {
            let n = 2 + (next() * 80.0) as usize;
            let line: LineString<f64> = (0..n)
                .map(|k| (k as f64 * 10.0 + next() * 40.0, next() * 60.0))
                .collect::<Vec<_>>()
                .into();
            // Some tolerances land on the distances of a grid-like line exactly.
            let tolerance = [0.0, 1.0, 5.0, 20.0, next() * 30.0][case % 5];
            assert_eq!(
                simplify_line(&line, tolerance),
                line.simplify(tolerance),
                "case {case}: {n} points, tolerance {tolerance}"
            );
        }
    }

    /// A small deterministic generator (xorshift) of numbers in [0, 1).
    fn rng(mut seed: u64) -> impl FnMut() -> f64 {
        move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    #[test]
    fn commands_match_geozero() {
        use geozero::ToMvt;
        let ring = |x: f64, y: f64, s: f64| {
            LineString::from(vec![(x, y), (x + s, y), (x + s, y + s), (x, y + s), (x, y)])
        };
        let line = LineString::from(vec![(3.0, 4.0), (-64.0, 100.0), (4160.0, 7.0)]);
        let geometries = vec![
            Geometry::Point(Point::new(12.0, -5.0)),
            Geometry::MultiPoint(vec![Point::new(1.0, 2.0), Point::new(-3.0, 4000.0)].into()),
            Geometry::LineString(line.clone()),
            Geometry::MultiLineString(MultiLineString::new(vec![
                line.clone(),
                LineString::from(vec![(0.0, 0.0), (9.0, 9.0)]),
            ])),
            Geometry::Polygon(Polygon::new(
                ring(0.0, 0.0, 100.0),
                vec![ring(10.0, 10.0, 5.0)],
            )),
            Geometry::MultiPolygon(MultiPolygon::new(vec![
                Polygon::new(ring(0.0, 0.0, 100.0), vec![]),
                Polygon::new(ring(500.0, 20.0, 50.0), vec![ring(510.0, 30.0, 5.0)]),
            ])),
        ];
        let mut ours = Vec::new();
        for g in &geometries {
            let kind = commands(g, &mut ours).expect("encodable");
            let theirs = g.to_mvt_unscaled().expect("encodable");
            assert_eq!(ours, theirs.geometry, "{g:?}");
            assert_eq!(Some(kind as i32), theirs.r#type, "{g:?}");
        }
        let one_point = Geometry::LineString(LineString::from(vec![(1.0, 1.0)]));
        assert!(commands(&one_point, &mut ours).is_none() && one_point.to_mvt_unscaled().is_err());
    }

    #[test]
    fn line_features_match_the_geometry_path() {
        let mut next = rng(11);
        let mut scratch = Scratch::default();
        let mut checked = 0;
        for case in 0..4000 {
            let z = [4u8, 8, 9, 12, 16][case % 5];
            let t = TileCoord::new(u32::from(z), (41u64 << z) >> 8, (98u64 << z) >> 8, 22).unwrap();
            let b = t.mercator_bounds();
            let (w, h) = (b.maxx - b.minx, b.maxy - b.miny);
            // Lines from a speck to wider than the tile, some crossing its edges.
            let spread = [0.0001, 0.01, 0.2, 1.5][case % 4];
            let (x0, y0) = (
                b.minx + (next() * 1.4 - 0.2) * w,
                b.miny + (next() * 1.4 - 0.2) * h,
            );
            let mut part = |n: usize| -> LineString<f64> {
                (0..n)
                    .map(|_| {
                        (
                            x0 + (next() - 0.5) * spread * w,
                            y0 + (next() - 0.5) * spread * h,
                        )
                    })
                    .collect::<Vec<_>>()
                    .into()
            };
            let n = [1usize, 2, 3, 6, 20, 70][case % 6];
            let g = if case % 3 == 0 {
                Geometry::MultiLineString(MultiLineString::new(vec![part(n), part(2), part(5)]))
            } else {
                Geometry::LineString(part(n))
            };
            let simplify_units = [0.0, 1.0, 4.0][case % 3];
            let (mut ours, mut expected) = (Vec::new(), Vec::new());
            let expected_kind =
                tile_geometry(&g, &t, simplify_units).and_then(|g| commands(&g, &mut expected));
            let kind = tile_feature(
                &g,
                t.z,
                simplify_units,
                &t.to_tile_transform(),
                &mut scratch,
                &mut ours,
            );
            assert_eq!(kind, expected_kind, "case {case}: {g:?} at {t:?}");
            if expected_kind.is_some() {
                assert_eq!(ours, expected, "case {case}: {g:?} at {t:?}");
            }
            checked += usize::from(expected_kind.is_some());
        }
        assert!(checked > 1000, "only {checked} lines reached a tile");
    }

    #[test]
    fn layers_are_written_as_prost_writes_them() {
        use crate::config::{PropertyConfig, default_layers};
        let mut layer = default_layers().swap_remove(1);
        for (name, kind) in [
            ("count", PropertyType::Integer),
            ("wet", PropertyType::Boolean),
        ] {
            layer.properties.push(PropertyConfig {
                name: name.into(),
                column: None,
                field: None,
                kind,
            });
        }
        let t = TileCoord::new(8, 41, 98, 22).unwrap();
        let b = t.mercator_bounds();
        let at = |fx: f64, fy: f64| {
            (
                b.minx + fx * (b.maxx - b.minx),
                b.miny + fy * (b.maxy - b.miny),
            )
        };
        let features: Vec<(i64, Geometry<f64>, Vec<Value>)> = (0..40)
            .map(|i| {
                let f = f64::from(i) / 40.0;
                let g = match i % 3 {
                    0 => Geometry::Point(at(f, 0.5).into()),
                    1 => Geometry::LineString(vec![at(f, 0.1), at(0.5, f), at(1.2, 0.9)].into()),
                    _ => Geometry::Polygon(Polygon::new(
                        vec![at(f, f), at(f + 0.1, f), at(f + 0.1, f + 0.1), at(f, f)].into(),
                        vec![],
                    )),
                };
                let mut props: Vec<Value> = vec![Value::Null; layer.properties.len()];
                props[0] = Value::from(format!("C_{}", i % 5));
                props[2] = Value::from(["channel", "diversion"][i as usize % 2]);
                props[8] = Value::from(f64::from(i) * 1.5);
                props[9] = Value::from(i64::from(i) - 20);
                props[10] = Value::from(i % 2 == 0);
                (i64::from(i) - 3, g, props)
            })
            .collect();
        let mut tile = Vec::new();
        let mut encoder = LayerEncoder::new(&layer, &t, t.to_tile_transform(), 10);
        for (id, g, props) in &features {
            encoder.add_mercator(*id, g, props);
        }
        encoder.finish(&mut tile);
        LayerEncoder::new(&layer, &t, t.to_tile_transform(), 0).finish(&mut tile);
        let decoded = Tile::decode(&tile[..]).expect("a valid tile");
        assert_eq!(
            decoded.encode_to_vec(),
            tile,
            "field order and encoding as prost's"
        );
        assert_eq!(decoded.layers.len(), 1, "an empty layer writes nothing");
        let l = &decoded.layers[0];
        assert_eq!(
            (l.name.as_str(), l.version, l.extent),
            ("arcs", 2, Some(4096))
        );
        assert_eq!(l.features.len(), 40);
        assert_eq!(l.features[0].id, None, "negative ids have no id field");
        assert_eq!(l.features[39].id, Some(36));
        let tag = |f: &tile::Feature, key: &str| {
            let k = l.keys.iter().position(|k| k == key)? as u32;
            let v = f.tags.chunks(2).find(|kv| kv[0] == k)?[1];
            Some(l.values[v as usize].clone())
        };
        let last = &l.features[39];
        assert_eq!(tag(last, "id").and_then(|v| v.uint_value), Some(36));
        assert_eq!(tag(last, "count").and_then(|v| v.uint_value), Some(19));
        let first = &l.features[0];
        assert_eq!(tag(first, "count").and_then(|v| v.sint_value), Some(-20));
        assert_eq!(tag(last, "wet").and_then(|v| v.bool_value), Some(false));
        assert_eq!(
            tag(last, "length_m").and_then(|v| v.double_value),
            Some(58.5)
        );
        assert_eq!(tag(last, "name"), None, "nulls are left out");
        assert_eq!(
            tag(last, "short_code").and_then(|v| v.string_value),
            Some("C_4".to_string())
        );
    }

    #[test]
    fn lines_are_clipped_to_the_buffer() {
        let t = TileCoord::new(8, 41, 98, 22).unwrap();
        let b = t.mercator_bounds();
        let mid = (b.miny + b.maxy) / 2.0;
        let line = Geometry::LineString(LineString::from(vec![
            (b.minx - 100_000.0, mid),
            (b.maxx + 100_000.0, mid),
        ]));
        let g = tile_geometry(&line, &t, 0.0).unwrap();
        let r = g.bounding_rect().unwrap();
        assert_eq!((r.min().x, r.max().x), (-64.0, 4160.0));
        assert_eq!(r.min().y, 2048.0);
    }

    #[test]
    fn polygons_get_mvt_winding() {
        let t = TileCoord::new(8, 41, 98, 22).unwrap();
        let (x0, y0) = lonlat_to_mercator(-122.0, 38.0);
        let (x1, y1) = lonlat_to_mercator(-121.5, 38.5);
        // Counter-clockwise in lon/lat, as GeoJSON writes exteriors.
        let poly = Geometry::Polygon(Polygon::new(
            LineString::from(vec![(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]),
            vec![],
        ));
        let Some(Geometry::Polygon(p)) = tile_geometry(&poly, &t, 0.0) else {
            panic!("polygon expected")
        };
        assert!(signed_area(p.exterior()) > 0.0);
    }

    #[test]
    fn specks_are_dropped_points_are_kept() {
        let t = TileCoord::new(2, 0, 1, 22).unwrap();
        let (x, y) = lonlat_to_mercator(-122.0, 38.0);
        let speck = Geometry::LineString(LineString::from(vec![(x, y), (x + 1.0, y)]));
        assert!(tile_geometry(&speck, &t, 0.0).is_none());
        assert!(tile_geometry(&Geometry::Point(Point::new(x, y)), &t, 0.0).is_some());
    }
}
