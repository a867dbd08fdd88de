-- A synthetic layer of 1,000,000 lines for the cold-tile benchmark (bench/vs-martin.sh).
-- Deterministic (setseed): short polylines of 2 to 6 vertices, a few hundred metres to a few
-- kilometres long, spread over California and around it (12 by 11 degrees), so a z 9 tile holds
-- two to three thousand of them.
SELECT setseed(0.42);
DROP TABLE IF EXISTS synthetic_line;
CREATE TABLE synthetic_line AS
SELECT i::bigint AS id,
       (i % 7)::integer AS kind,
       ST_SetSRID(ST_MakeLine(ARRAY(
           SELECT ST_MakePoint(x0 + k * dx + (random() - 0.5) * 0.004,
                               y0 + k * dy + (random() - 0.5) * 0.004)
           FROM generate_series(0, n - 1) AS k
       )), 4326)::geometry(LineString, 4326) AS geom
FROM (
    SELECT i,
           -125.0 + random() * 12.0 AS x0,
           32.0 + random() * 11.0 AS y0,
           (random() - 0.5) * 0.01 AS dx,
           (random() - 0.5) * 0.01 AS dy,
           2 + floor(random() * 5)::int AS n
    FROM generate_series(1, 1000000) AS i
) s;
ALTER TABLE synthetic_line ADD PRIMARY KEY (id);
CREATE INDEX synthetic_line_geom_idx ON synthetic_line USING gist (geom);
ANALYZE synthetic_line;
