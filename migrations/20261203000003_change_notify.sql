-- Change notification: every insert, update or delete on a layer table sends the table and the
-- bounding box of the old and new geometry (lon/lat) on channel `coeqwal_changes`, so every
-- server instance drops the cached tiles that box touches and rebuilds its network graph.
-- TRUNCATE sends no box: the instances drop everything of that table.
CREATE OR REPLACE FUNCTION coeqwal_notify_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    box geometry;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM pg_notify('coeqwal_changes', json_build_object('table', TG_TABLE_NAME, 'op', TG_OP)::text);
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        box := ST_Envelope(NEW.geom);
    ELSIF TG_OP = 'DELETE' THEN
        box := ST_Envelope(OLD.geom);
    ELSE
        box := ST_Envelope(ST_Collect(OLD.geom, NEW.geom));
    END IF;
    PERFORM pg_notify('coeqwal_changes', json_build_object(
        'table', TG_TABLE_NAME,
        'op', TG_OP,
        'bbox', json_build_array(ST_XMin(box), ST_YMin(box), ST_XMax(box), ST_YMax(box))
    )::text);
    RETURN NULL;
END;
$$;

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['network_node', 'network_arc', 'demand_unit'] LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS %I ON %I', t || '_notify', t);
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE ON %I
                        FOR EACH ROW EXECUTE FUNCTION coeqwal_notify_change()', t || '_notify', t);
        EXECUTE format('DROP TRIGGER IF EXISTS %I ON %I', t || '_notify_truncate', t);
        EXECUTE format('CREATE TRIGGER %I AFTER TRUNCATE ON %I
                        FOR EACH STATEMENT EXECUTE FUNCTION coeqwal_notify_change()', t || '_notify_truncate', t);
    END LOOP;
END;
$$;
