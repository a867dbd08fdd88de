-- /api/search also looks in the names people know (node descriptions and reservoir names),
-- through trigram indexes like the other searched columns.
CREATE INDEX IF NOT EXISTS network_node_description_trgm ON network_node USING gin (description gin_trgm_ops);
CREATE INDEX IF NOT EXISTS network_node_reservoir_trgm ON network_node USING gin (reservoir_name gin_trgm_ops);
