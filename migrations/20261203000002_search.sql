-- Trigram indexes for /api/search: case-insensitive substring (ILIKE '%q%') without a table scan.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX IF NOT EXISTS network_node_code_trgm ON network_node USING gin (short_code gin_trgm_ops);
CREATE INDEX IF NOT EXISTS network_node_name_trgm ON network_node USING gin (name gin_trgm_ops);
CREATE INDEX IF NOT EXISTS network_node_calsim_trgm ON network_node USING gin (calsim_id gin_trgm_ops);
CREATE INDEX IF NOT EXISTS network_arc_code_trgm ON network_arc USING gin (short_code gin_trgm_ops);
CREATE INDEX IF NOT EXISTS network_arc_name_trgm ON network_arc USING gin (name gin_trgm_ops);
