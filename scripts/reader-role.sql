-- The least-privileged role the server needs to serve: read the three layer tables and LISTEN
-- for their changes (LISTEN needs no privilege). It cannot write, create or import anything;
-- run `migrate` and `import` with the owner's role instead.
--
-- Run it as the tables' owner, after `migrate`, then give the role a password:
--   psql "$ADMIN_DATABASE_URL" -v ON_ERROR_STOP=1 -f scripts/reader-role.sql
--   psql "$ADMIN_DATABASE_URL" -c "ALTER ROLE coeqwal_reader PASSWORD '...'"
-- and serve with DATABASE_URL=postgres://coeqwal_reader:...@host/db.
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'coeqwal_reader') THEN
    CREATE ROLE coeqwal_reader LOGIN;
  END IF;
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO coeqwal_reader', current_database());
END
$$;
GRANT USAGE ON SCHEMA public TO coeqwal_reader;
GRANT SELECT ON network_node, network_arc, demand_unit TO coeqwal_reader;
