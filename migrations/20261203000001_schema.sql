-- The three layer tables of the CalSim network, in SRID 4326.
CREATE EXTENSION IF NOT EXISTS postgis;

CREATE TABLE IF NOT EXISTS network_node (
    id                  bigint PRIMARY KEY,
    short_code          text NOT NULL UNIQUE,
    calsim_id           text,
    name                text,
    description         text,
    node_type           text,
    sub_type            text,
    river               text,
    river_mile          double precision,
    stream_code         text,
    hydrologic_region   text,
    reservoir_name      text,
    capacity_taf        double precision,
    dead_pool_taf       double precision,
    surface_area_acres  double precision,
    operational_purpose text,
    geom                geometry(Point, 4326) NOT NULL
);
CREATE INDEX IF NOT EXISTS network_node_geom_idx ON network_node USING gist (geom);
CREATE INDEX IF NOT EXISTS network_node_type_idx ON network_node (node_type);
CREATE INDEX IF NOT EXISTS network_node_region_idx ON network_node (hydrologic_region);

CREATE TABLE IF NOT EXISTS network_arc (
    id                bigint PRIMARY KEY,
    short_code        text NOT NULL UNIQUE,
    name              text,
    arc_type          text,
    sub_type          text,
    from_node         text,
    to_node           text,
    river             text,
    hydrologic_region text,
    length_m          double precision,
    geom              geometry(LineString, 4326) NOT NULL
);
CREATE INDEX IF NOT EXISTS network_arc_geom_idx ON network_arc USING gist (geom);
CREATE INDEX IF NOT EXISTS network_arc_from_idx ON network_arc (from_node);
CREATE INDEX IF NOT EXISTS network_arc_to_idx ON network_arc (to_node);
CREATE INDEX IF NOT EXISTS network_arc_region_idx ON network_arc (hydrologic_region);

-- Source polygons are stored as given (some self-intersect); tiles read `geom_valid`,
-- a copy the database keeps in step by itself: the polygon itself when valid (vertex order
-- kept, so simplification matches the memory source), else its ST_MakeValid repair.
CREATE TABLE IF NOT EXISTS demand_unit (
    id         bigint PRIMARY KEY,
    du_id      text,
    kind       text,
    name       text,
    acres      double precision,
    geom       geometry(MultiPolygon, 4326) NOT NULL,
    geom_valid geometry(MultiPolygon, 4326)
        GENERATED ALWAYS AS (CASE WHEN ST_IsValid(geom) THEN geom
                                  ELSE ST_Multi(ST_CollectionExtract(ST_MakeValid(geom, 'method=structure'), 3)) END) STORED
);
CREATE INDEX IF NOT EXISTS demand_unit_geom_idx ON demand_unit USING gist (geom);
CREATE INDEX IF NOT EXISTS demand_unit_geom_valid_idx ON demand_unit USING gist (geom_valid);
CREATE INDEX IF NOT EXISTS demand_unit_du_id_idx ON demand_unit (du_id);
