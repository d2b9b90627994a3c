/* pg_tviews--0.1.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION pg_tviews" to load this file. \quit

-- Debugging aid: the decoder's binary messages, in stream order, as the JSON
-- lines its "json" format writes for the same changes.  See docs/decoder.md.
CREATE FUNCTION pg_tviews_wire_to_json(messages bytea[])
RETURNS SETOF text
AS 'MODULE_PATHNAME', 'pg_tviews_wire_to_json'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

COMMENT ON FUNCTION pg_tviews_wire_to_json(bytea[]) IS
'renders pg_tviews_decoder binary messages (in stream order) as the JSON lines of its json format';

CREATE FUNCTION pg_tviews_analyze(query text, key name,
    OUT source regclass, OUT rule text, OUT source_column name,
    OUT tview_column name, OUT columns_used name[], OUT location text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'pg_tviews_analyze'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION pg_tviews_analyze(text, name) IS
'dependencies and lineage rules of a TVIEW definition: one row per base relation occurrence';

-- ---------------------------------------------------------------------
-- Catalog.  Relations are referenced as regclass so that pg_dump and
-- pg_restore carry the references by name.
-- ---------------------------------------------------------------------
CREATE SCHEMA tviews;
COMMENT ON SCHEMA tviews IS 'pg_tviews catalog and TVIEW backing views';

CREATE TABLE tviews.tview (
    tview regclass PRIMARY KEY,
    backing_view regclass NOT NULL,
    key_column name NOT NULL,
    key_type regtype NOT NULL,
    definition text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- 'ready': maintained; 'stale': changes were dropped, a full refresh is due
    state text NOT NULL DEFAULT 'ready' CHECK (state IN ('ready', 'stale')),
    last_refreshed timestamptz,
    last_refresh_duration_ms numeric,
    last_error text,
    rows_refreshed bigint NOT NULL DEFAULT 0,
    full_refreshes bigint NOT NULL DEFAULT 0,
    emergency_disabled boolean NOT NULL DEFAULT false,
    emergency_disable_time timestamptz,
    emergency_disable_reason text
);
COMMENT ON TABLE tviews.tview IS 'one row per TVIEW';

CREATE TABLE tviews.source (
    tview regclass NOT NULL REFERENCES tviews.tview ON DELETE CASCADE,
    source regclass NOT NULL,
    rule text NOT NULL CHECK (rule IN ('root', 'child', 'parent', 'full')),
    source_column name,
    tview_column name,
    columns_used name[] NOT NULL,
    location text,
    source_is_tview boolean NOT NULL DEFAULT false
);
CREATE INDEX ON tviews.source (source);
COMMENT ON TABLE tviews.source IS
'one row per base relation occurrence of a TVIEW definition, with its lineage rule';

-- What the decoder emits: tracked base relations and the columns it must
-- carry.  A user_catalog_table, so that the decoder can read it under the
-- historic snapshot of the changes it decodes.  Derived from
-- tviews.source by pg_tviews_sync_tracked().
CREATE TABLE tviews.tracked (
    relid regclass PRIMARY KEY,
    lineage_columns name[] NOT NULL
) WITH (user_catalog_table = true);
COMMENT ON TABLE tviews.tracked IS
'base relations whose changes the decoder emits (derived from tviews.source)';

-- Keys the engine gave up on after pg_tviews.max_retries attempts.
CREATE TABLE tviews.failed_key (
    tview regclass NOT NULL REFERENCES tviews.tview ON DELETE CASCADE,
    key text NOT NULL,              -- '' for a whole-TVIEW refresh
    full_refresh boolean NOT NULL DEFAULT false,
    error text NOT NULL,
    attempts integer NOT NULL,
    failed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tview, key)
);
COMMENT ON TABLE tviews.failed_key IS
'refreshes parked after repeated failures; pg_tviews_refresh() or pg_tviews_refresh_row() retries them';

SELECT pg_catalog.pg_extension_config_dump('tviews.tview', '');
SELECT pg_catalog.pg_extension_config_dump('tviews.source', '');
SELECT pg_catalog.pg_extension_config_dump('tviews.tracked', '');

-- ---------------------------------------------------------------------
-- Engine helpers implemented in C
-- ---------------------------------------------------------------------
CREATE FUNCTION pg_tviews_slot_name() RETURNS name
AS 'MODULE_PATHNAME', 'pg_tviews_slot_name' LANGUAGE C STRICT STABLE;
COMMENT ON FUNCTION pg_tviews_slot_name() IS
'name of the replication slot the engine of this database streams';

CREATE FUNCTION tviews._invalidate(regclass) RETURNS void
AS 'MODULE_PATHNAME', 'pg_tviews_invalidate' LANGUAGE C STRICT VOLATILE;

CREATE FUNCTION tviews._wakeup() RETURNS void
AS 'MODULE_PATHNAME', 'pg_tviews_wakeup' LANGUAGE C STRICT VOLATILE;

-- Queue a key of a TVIEW for the engine (NULL key: the whole TVIEW).
CREATE FUNCTION tviews._enqueue(tview regclass, key text) RETURNS void
AS 'MODULE_PATHNAME', 'pg_tviews_enqueue' LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION tviews._enqueue(regclass, text) FROM PUBLIC;

CREATE FUNCTION pg_tviews_wait(timeout interval DEFAULT '30 seconds')
RETURNS boolean
AS 'MODULE_PATHNAME', 'pg_tviews_wait' LANGUAGE C STRICT VOLATILE;
CREATE FUNCTION pg_tviews_engines(
    OUT datid oid, OUT state text, OUT pid integer, OUT started_at timestamptz,
    OUT heartbeat timestamptz, OUT restarts integer, OUT decoded_lsn pg_lsn,
    OUT applied_lsn pg_lsn, OUT confirmed_lsn pg_lsn, OUT batches bigint,
    OUT changes bigint, OUT keys_refreshed bigint, OUT queued integer,
    OUT last_error text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'pg_tviews_engines' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION pg_tviews_engines() IS
'live state of the refresh engine of every database, from shared memory';

CREATE FUNCTION pg_tviews_queue_entries(
    OUT tview regclass, OUT key text, OUT full_refresh boolean,
    OUT source_lsn pg_lsn, OUT enqueued_at timestamptz, OUT attempts integer,
    OUT error text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'pg_tviews_queue_entries' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION pg_tviews_queue_entries() IS
'the refresh queue of this database (pending and retrying keys), from shared memory';

COMMENT ON FUNCTION pg_tviews_wait(interval) IS
'read-your-writes: true once every change committed before the call is applied to the TVIEWs, false on timeout';

-- Re-derive tviews.tracked from tviews.source.  Every relation whose
-- tracking changes gets a relcache invalidation, which logical decoding
-- replays at this transaction's commit, so the decoder starts (or stops)
-- emitting its changes from exactly that point.
CREATE FUNCTION tviews.sync_tracked() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    FOR r IN
        WITH wanted AS (
            SELECT s.source AS relid,
                   coalesce(array_agg(DISTINCT s.source_column ORDER BY s.source_column)
                            FILTER (WHERE s.source_column IS NOT NULL), '{}') AS cols
            FROM tviews.source s
            WHERE NOT s.source_is_tview
            GROUP BY s.source)
        SELECT coalesce(w.relid, t.relid) AS relid, w.cols, t.lineage_columns
        FROM wanted w FULL JOIN tviews.tracked t ON t.relid = w.relid
        WHERE w.cols IS DISTINCT FROM t.lineage_columns
    LOOP
        IF r.cols IS NULL THEN
            DELETE FROM tviews.tracked WHERE relid = r.relid;
        ELSE
            -- (no ON CONFLICT on a catalog table)
            UPDATE tviews.tracked SET lineage_columns = r.cols WHERE relid = r.relid;
            IF NOT FOUND THEN
                INSERT INTO tviews.tracked VALUES (r.relid, r.cols);
            END IF;
        END IF;
        PERFORM tviews._invalidate(r.relid);
    END LOOP;
END
$$;

-- Is column col of rel in its replica identity, i.e. does its old value
-- reach the WAL on UPDATE and DELETE?
CREATE FUNCTION tviews.replica_identity_has(rel regclass, col name)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT CASE c.relreplident
        WHEN 'f' THEN true
        WHEN 'n' THEN false
        ELSE EXISTS (
            SELECT 1
            FROM pg_index i
            JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
            WHERE i.indrelid = c.oid AND a.attname = col
              AND CASE c.relreplident WHEN 'd' THEN i.indisprimary ELSE i.indisreplident END)
        END
    FROM pg_class c WHERE c.oid = rel
$$;

-- ---------------------------------------------------------------------
-- TVIEW definitions
-- ---------------------------------------------------------------------

-- Common checks of a TVIEW name; returns {schema, name}.
CREATE FUNCTION tviews.split_name(tview_name text) RETURNS text[]
LANGUAGE plpgsql STABLE AS $$
DECLARE
    parts text[] := parse_ident(tview_name);
BEGIN
    IF array_length(parts, 1) = 1 THEN
        IF current_schema() IS NULL THEN
            RAISE EXCEPTION 'no schema has been selected to create the TVIEW in'
                USING ERRCODE = 'invalid_schema_name';
        END IF;
        RETURN ARRAY[current_schema(), parts[1]];
    ELSIF array_length(parts, 1) = 2 THEN
        RETURN parts;
    END IF;
    RAISE EXCEPTION 'invalid TVIEW name "%"', tview_name
        USING ERRCODE = 'invalid_name', HINT = 'Use name or schema.name.';
END
$$;

CREATE FUNCTION tviews.output_columns(query text) RETURNS name[]
AS 'MODULE_PATHNAME', 'pg_tviews_output_columns' LANGUAGE C STRICT VOLATILE;

-- The key column: the one given; else pk_<entity> for a TVIEW named
-- tv_<entity>; else the only pk_* column the definition selects.
CREATE FUNCTION tviews.default_key(rel text, key name, def text) RETURNS name
LANGUAGE plpgsql AS $$
DECLARE
    cols name[];
    pks name[];
BEGIN
    IF key IS NOT NULL THEN
        RETURN key;
    END IF;
    cols := tviews.output_columns(def);
    IF rel ~ '^tv_.' AND ('pk_' || substr(rel, 4))::name = ANY (cols) THEN
        RETURN ('pk_' || substr(rel, 4))::name;
    END IF;
    SELECT array_agg(c) INTO pks FROM unnest(cols) c WHERE c LIKE 'pk\_%';
    IF array_length(pks, 1) = 1 THEN
        RETURN pks[1];
    END IF;
    RAISE EXCEPTION 'cannot derive the key column of TVIEW "%"', rel
        USING ERRCODE = 'invalid_parameter_value',
              DETAIL = CASE WHEN pks IS NULL THEN 'The definition selects no pk_* column.'
                            ELSE format('The definition selects several pk_* columns: %s.', array_to_string(pks, ', ')) END,
              HINT = 'Select pk_<entity> for a TVIEW named tv_<entity>, or pass the key: pg_tviews_create(name, query, key => ''id'').';
END
$$;

-- TVIEWs are populated with a snapshot taken after their base tables are
-- locked; a transaction snapshot taken earlier could miss writes.
CREATE FUNCTION tviews.check_isolation() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'TVIEWs must be created at READ COMMITTED isolation'
            USING ERRCODE = 'active_sql_transaction',
                  DETAIL = 'The TVIEW is populated with a snapshot taken after its base tables are locked against writers; an older transaction snapshot could miss concurrent changes.';
    END IF;
END
$$;

-- Make sure the engine's slot exists before anything becomes tracked:
-- changes committed before the slot's start would never be decoded.
CREATE FUNCTION tviews.ensure_slot() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    slot name := pg_tviews_slot_name();
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = slot) THEN
        BEGIN
            PERFORM pg_create_logical_replication_slot(slot, 'pg_tviews_decoder');
        EXCEPTION
            WHEN duplicate_object THEN NULL;   -- the engine made it meanwhile
            WHEN object_not_in_prerequisite_state THEN
                RAISE EXCEPTION 'cannot create the pg_tviews replication slot "%"', slot
                    USING ERRCODE = 'object_not_in_prerequisite_state',
                          DETAIL = SQLERRM,
                          HINT = 'Create the first TVIEW of a database in a transaction that has not written yet, or wait until the pg_tviews engine has created its slot.';
        END;
    END IF;
END
$$;

-- Block writers to every base relation of a definition until commit.
-- Statements after this take snapshots that see every write committed
-- before, and every later write is decoded with the TVIEW already
-- tracked: no change falls in between.
CREATE FUNCTION tviews.lock_sources(def text, keycol name) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT DISTINCT a.source::oid AS relid
             FROM pg_tviews_analyze(def, keycol) a ORDER BY 1 LOOP
        EXECUTE format('LOCK TABLE %s IN SHARE MODE', r.relid::regclass);
    END LOOP;
END
$$;

-- Register a table tv, whose content is computed by view vw, as a TVIEW:
-- key constraints and indexes, catalog rows, replica identity, tracking.
-- The table must already hold the view's current result.
CREATE FUNCTION tviews.register(tv regclass, vw regclass, keycol name, def text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    r record;
    keytype regtype;
    rel text := (SELECT relname FROM pg_class WHERE oid = tv);
BEGIN
    SELECT atttypid::regtype INTO keytype
    FROM pg_attribute WHERE attrelid = tv AND attname = keycol AND NOT attisdropped;

    -- parent rules find affected keys through the TVIEW column they match
    FOR r IN SELECT DISTINCT a.tview_column FROM pg_tviews_analyze(def, keycol) a
             WHERE a.rule = 'parent' AND a.tview_column <> keycol
               AND NOT EXISTS (SELECT FROM pg_index i JOIN pg_attribute at
                                 ON at.attrelid = i.indrelid AND at.attnum = i.indkey[0]
                               WHERE i.indrelid = tv AND at.attname = a.tview_column) LOOP
        EXECUTE format('CREATE INDEX ON %s (%I)', tv, r.tview_column);
    END LOOP;

    INSERT INTO tviews.tview (tview, backing_view, key_column, key_type, definition,
                              last_refreshed, full_refreshes)
    VALUES (tv, vw, keycol, keytype, def, now(), 1);
    INSERT INTO tviews.source
    SELECT tv, a.source, a.rule, a.source_column, a.tview_column, a.columns_used,
           a.location, EXISTS (SELECT 1 FROM tviews.tview t WHERE t.tview = a.source)
    FROM pg_tviews_analyze(def, keycol) a;

    -- old values of lineage columns must reach the WAL
    FOR r IN SELECT DISTINCT s.source, s.source_column
             FROM tviews.source s
             WHERE s.tview = tv AND s.rule <> 'full' AND NOT s.source_is_tview
               AND NOT tviews.replica_identity_has(s.source, s.source_column) LOOP
        EXECUTE format('ALTER TABLE %s REPLICA IDENTITY FULL', r.source);
        RAISE NOTICE 'set REPLICA IDENTITY FULL on % so that old values of column % reach the WAL',
            r.source, r.source_column;
    END LOOP;

    FOR r IN SELECT s.source, s.location FROM tviews.source s
             WHERE s.tview = tv AND s.rule = 'full' LOOP
        RAISE NOTICE 'every change to % (%) refreshes all of %', r.source, r.location, tv
            USING HINT = 'To make it incremental, link it with an equality to the key (e.g. c.fk_post = p.pk_post) or to a column the TVIEW selects (e.g. u.pk_user = p.fk_user, selecting p.fk_user).';
    END LOOP;

    PERFORM tviews.sync_tracked();
    PERFORM tviews._wakeup();
END
$$;

-- Add NOT NULL and the unique index on the key to a TVIEW table.
CREATE FUNCTION tviews.constrain_key(tv regclass, keycol name) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET NOT NULL', tv, keycol);
    IF NOT EXISTS (SELECT FROM pg_index i JOIN pg_attribute a
                     ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                   WHERE i.indrelid = tv AND i.indisunique AND i.indnkeyatts = 1
                     AND i.indpred IS NULL AND a.attname = keycol) THEN
        EXECUTE format('CREATE UNIQUE INDEX ON %s (%I)', tv, keycol);
    END IF;
EXCEPTION
    WHEN unique_violation THEN
        RAISE EXCEPTION 'key column "%" is not unique in the result of the TVIEW definition', keycol
            USING ERRCODE = 'unique_violation', DETAIL = SQLERRM,
                  HINT = 'Each key value must identify one row: select the root table''s primary key, or group by the key.';
    WHEN not_null_violation THEN
        RAISE EXCEPTION 'key column "%" is NULL in some rows of the TVIEW definition', keycol
            USING ERRCODE = 'not_null_violation',
                  HINT = 'Select the key from the root table, not from the nullable side of an outer join.';
END
$$;

-- Create a TVIEW: a table holding the result of query, one row per key,
-- kept up to date from the WAL by the engine.
CREATE FUNCTION pg_tviews_create(tview_name text, query text, key name DEFAULT NULL)
RETURNS regclass LANGUAGE plpgsql AS $$
DECLARE
    parts text[] := tviews.split_name(tview_name);
    nsp text := parts[1];
    rel text := parts[2];
    def text := regexp_replace(query, ';\s*$', '');
    keycol name := tviews.default_key(parts[2], key, def);
    vwname text;
    vw regclass;
    tv regclass;
BEGIN
    PERFORM tviews.check_isolation();
    IF to_regclass(format('%I.%I', nsp, rel)) IS NOT NULL THEN
        RAISE EXCEPTION 'relation "%.%" already exists', nsp, rel
            USING ERRCODE = 'duplicate_table',
                  HINT = 'To make an existing table a TVIEW, use pg_tviews_convert_existing_table().';
    END IF;

    -- analyse first: bad definitions fail before anything is created
    PERFORM count(*) FROM pg_tviews_analyze(def, keycol);
    PERFORM tviews.ensure_slot();
    PERFORM tviews.lock_sources(def, keycol);

    vwname := CASE WHEN length(rel) <= 59 THEN rel || '_def'
                   ELSE left(rel, 50) || '_' || left(md5(rel), 8) || '_def' END;
    EXECUTE format('CREATE VIEW %I.%I AS %s', nsp, vwname, def);
    vw := format('%I.%I', nsp, vwname)::regclass;
    EXECUTE format('CREATE TABLE %I.%I AS SELECT * FROM %s', nsp, rel, vw);
    tv := format('%I.%I', nsp, rel)::regclass;
    PERFORM tviews.constrain_key(tv, keycol);
    PERFORM tviews.register(tv, vw, keycol, def);
    RETURN tv;
END
$$;
COMMENT ON FUNCTION pg_tviews_create(text, text, name) IS
'creates a TVIEW: a table holding the result of query, maintained incrementally from the WAL';

-- Make an existing table a TVIEW.  Its definition is query, or else the
-- view <table>_def beside it (what pg_tviews_create made, and what stays
-- behind after DROP EXTENSION or a restore without the extension).  The
-- table's columns must be the definition's; its content is brought up to
-- date before the engine takes over.
CREATE FUNCTION pg_tviews_convert_existing_table(tview_name text, query text DEFAULT NULL,
                                                 key name DEFAULT NULL)
RETURNS regclass LANGUAGE plpgsql AS $$
DECLARE
    parts text[] := tviews.split_name(tview_name);
    nsp text := parts[1];
    rel text := parts[2];
    keycol name;
    tv regclass := to_regclass(format('%I.%I', nsp, rel));
    vwname text;
    vw regclass;
    def text;
    diff text;
BEGIN
    PERFORM tviews.check_isolation();
    IF tv IS NULL OR (SELECT relkind FROM pg_class WHERE oid = tv) NOT IN ('r', 'p') THEN
        RAISE EXCEPTION 'table "%.%" does not exist', nsp, rel
            USING ERRCODE = 'undefined_table';
    END IF;
    IF EXISTS (SELECT FROM tviews.tview WHERE tview = tv) THEN
        RAISE EXCEPTION '% is already a TVIEW', tv USING ERRCODE = 'duplicate_object';
    END IF;
    vwname := CASE WHEN length(rel) <= 59 THEN rel || '_def'
                   ELSE left(rel, 50) || '_' || left(md5(rel), 8) || '_def' END;
    vw := to_regclass(format('%I.%I', nsp, vwname));
    IF query IS NOT NULL THEN
        def := regexp_replace(query, ';\s*$', '');
        IF vw IS NOT NULL THEN
            RAISE EXCEPTION 'relation "%.%" already exists', nsp, vwname
                USING ERRCODE = 'duplicate_table',
                      HINT = 'Drop it, or omit the query to use its definition.';
        END IF;
    ELSIF vw IS NULL THEN
        RAISE EXCEPTION 'no definition for TVIEW "%.%"', nsp, rel
            USING ERRCODE = 'undefined_object',
                  HINT = format('Pass the defining query, or create the view %I.%I holding it.', nsp, vwname);
    ELSE
        def := regexp_replace(pg_get_viewdef(vw), ';\s*$', '');
    END IF;

    keycol := tviews.default_key(rel, key, def);
    -- a definition reading the table itself, or a TVIEW built on it, would
    -- make the TVIEW depend on itself
    IF EXISTS (
        WITH RECURSIVE dependents(t) AS (
            SELECT tv::regclass
            UNION
            SELECT s.tview FROM tviews.source s JOIN dependents d ON s.source = d.t)
        SELECT FROM pg_tviews_analyze(def, keycol) a JOIN dependents d ON a.source = d.t) THEN
        RAISE EXCEPTION 'the definition of TVIEW % reads % itself or a TVIEW built on it', tv, tv
            USING ERRCODE = 'invalid_recursion';
    END IF;
    PERFORM count(*) FROM pg_tviews_analyze(def, keycol);
    PERFORM tviews.ensure_slot();
    PERFORM tviews.lock_sources(def, keycol);
    EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', tv);
    IF vw IS NULL THEN
        EXECUTE format('CREATE VIEW %I.%I AS %s', nsp, vwname, def);
        vw := format('%I.%I', nsp, vwname)::regclass;
    END IF;

    -- same columns, same types, same order
    SELECT string_agg(format('%s %s / %s %s',
                             coalesce(quote_ident(t.attname), '-'), coalesce(format_type(t.atttypid, t.atttypmod), '-'),
                             coalesce(quote_ident(v.attname), '-'), coalesce(format_type(v.atttypid, v.atttypmod), '-')), ', ')
      INTO diff
    FROM (SELECT row_number() OVER (ORDER BY attnum) AS n, attname, atttypid, atttypmod
          FROM pg_attribute WHERE attrelid = tv AND attnum > 0 AND NOT attisdropped) t
    FULL JOIN (SELECT row_number() OVER (ORDER BY attnum) AS n, attname, atttypid, atttypmod
               FROM pg_attribute WHERE attrelid = vw AND attnum > 0 AND NOT attisdropped) v
      USING (n)
    WHERE t.attname IS DISTINCT FROM v.attname OR t.atttypid IS DISTINCT FROM v.atttypid;
    IF diff IS NOT NULL THEN
        RAISE EXCEPTION 'table % does not have the columns of its definition', tv
            USING ERRCODE = 'datatype_mismatch',
                  DETAIL = 'Differences (table / definition): ' || diff || '.';
    END IF;

    -- bring the content up to date (writers are blocked), then register
    EXECUTE format('DELETE FROM %s', tv);
    EXECUTE format('INSERT INTO %s SELECT * FROM %s', tv, vw);
    PERFORM tviews.constrain_key(tv, keycol);
    PERFORM tviews.register(tv, vw, keycol, def);
    RETURN tv;
END
$$;
COMMENT ON FUNCTION pg_tviews_convert_existing_table(text, text, name) IS
'makes an existing table a TVIEW (definition given, or the view <table>_def), bringing its content up to date';

-- Drop a TVIEW, its backing view and its catalog entries.
CREATE FUNCTION pg_tviews_drop(tview_name text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    tv regclass := tview_name::regclass;
    t tviews.tview;
    dep text;
BEGIN
    SELECT * INTO t FROM tviews.tview WHERE tview = tv;
    IF NOT FOUND THEN
        RAISE EXCEPTION '"%" is not a TVIEW', tview_name
            USING ERRCODE = 'wrong_object_type';
    END IF;
    SELECT string_agg(DISTINCT s.tview::text, ', ') INTO dep
    FROM tviews.source s WHERE s.source = tv AND s.tview <> tv;
    IF dep IS NOT NULL THEN
        RAISE EXCEPTION 'cannot drop TVIEW % because other TVIEWs depend on it', tv
            USING ERRCODE = 'dependent_objects_still_exist',
                  DETAIL = 'TVIEWs built on it: ' || dep || '.',
                  HINT = 'Drop those TVIEWs first.';
    END IF;
    DELETE FROM tviews.tview WHERE tview = tv;
    PERFORM tviews.sync_tracked();
    EXECUTE format('DROP TABLE %s', tv);
    EXECUTE format('DROP VIEW %s', t.backing_view);
END
$$;
COMMENT ON FUNCTION pg_tviews_drop(text) IS 'drops a TVIEW and its definition';

-- ---------------------------------------------------------------------
-- Refresh
-- ---------------------------------------------------------------------

-- The statement that refreshes a TVIEW from its backing view, for a scope:
--   'keys'  rows whose key is in $1 (text[])
--   'range' rows whose key is between $1 and $2 (text)
--   'all'   every row
-- It recomputes the rows, inserts or updates those that differ (unchanged
-- rows are not written), deletes those that vanished, and returns the
-- number of rows written or deleted.  One statement, set-based; the
-- engine prepares it once per TVIEW.
CREATE FUNCTION tviews.refresh_sql(tv regclass, scope text)
RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    t tviews.tview;
    keytype text;
    cols text;
    setlist text;
    differs text;
    cond text;
BEGIN
    SELECT * INTO t FROM tviews.tview WHERE tview = tv;
    IF NOT FOUND THEN
        RAISE EXCEPTION '"%" is not a TVIEW', tv USING ERRCODE = 'wrong_object_type';
    END IF;
    keytype := format_type(t.key_type, NULL);
    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum),
           string_agg(format('%I = EXCLUDED.%I', a.attname, a.attname), ', ' ORDER BY a.attnum)
               FILTER (WHERE a.attname <> t.key_column),
           string_agg(CASE WHEN o.oid IS NOT NULL
                           THEN format('d.%I IS DISTINCT FROM EXCLUDED.%I', a.attname, a.attname)
                           ELSE format('d.%I::text IS DISTINCT FROM EXCLUDED.%I::text', a.attname, a.attname)
                      END, ' OR ' ORDER BY a.attnum)
               FILTER (WHERE a.attname <> t.key_column)
      INTO cols, setlist, differs
    FROM pg_attribute a
    LEFT JOIN pg_operator o ON o.oprname = '=' AND o.oprleft = a.atttypid
                           AND o.oprright = a.atttypid AND o.oprcanhash
    WHERE a.attrelid = tv AND a.attnum > 0 AND NOT a.attisdropped;

    -- the condition on the key, written for a table alias (%1$s)
    cond := CASE scope
        WHEN 'keys' THEN format('%%1$s.%I = ANY ($1::%s[])', t.key_column, keytype)
        WHEN 'range' THEN format('%%1$s.%I BETWEEN $1::%s AND $2::%s', t.key_column, keytype, keytype)
        WHEN 'all' THEN 'true'
    END;
    IF cond IS NULL THEN
        RAISE EXCEPTION 'unknown refresh scope "%"', scope USING ERRCODE = 'invalid_parameter_value';
    END IF;

    RETURN format(
        'WITH src AS MATERIALIZED (SELECT %1$s FROM %2$s v WHERE %3$s), '
        'del AS (DELETE FROM %4$s d WHERE %8$s '
        'AND NOT EXISTS (SELECT FROM src WHERE src.%5$I = d.%5$I) RETURNING 1), '
        'ups AS (INSERT INTO %4$s AS d (%1$s) SELECT %1$s FROM src '
        'ON CONFLICT (%5$I) %6$s RETURNING 1) '
        'SELECT (SELECT count(*) FROM del) + (SELECT count(*) FROM ups)',
        cols, t.backing_view, format(cond, 'v'), tv, t.key_column,
        CASE WHEN setlist IS NULL THEN 'DO NOTHING'
             ELSE format('DO UPDATE SET %s WHERE %s', setlist, differs) END,
        NULL, format(cond, 'd'));
END
$$;

-- May the current user refresh this TVIEW by hand?  As for REFRESH
-- MATERIALIZED VIEW: its owner (or a member of the owning role).
CREATE FUNCTION tviews.check_refresh_privilege(tv regclass)
RETURNS tviews.tview LANGUAGE plpgsql STABLE AS $$
DECLARE
    t tviews.tview;
BEGIN
    SELECT * INTO t FROM tviews.tview WHERE tview = tv;
    IF NOT FOUND THEN
        RAISE EXCEPTION '"%" is not a TVIEW', tv USING ERRCODE = 'wrong_object_type';
    END IF;
    IF NOT pg_has_role((SELECT relowner FROM pg_class WHERE oid = tv), 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of TVIEW %', tv
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN t;
END
$$;

-- Record a manual refresh in the catalog and queue the TVIEWs built on it.
CREATE FUNCTION tviews.note_refresh(tv regclass, started timestamptz, whole boolean)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    dep regclass;
BEGIN
    UPDATE tviews.tview
       SET last_refreshed = clock_timestamp(),
           last_refresh_duration_ms = round(extract(epoch FROM clock_timestamp() - started)::numeric * 1000, 3),
           full_refreshes = full_refreshes + whole::int,
           state = CASE WHEN whole THEN 'ready' ELSE state END,
           last_error = CASE WHEN whole THEN NULL ELSE last_error END
     WHERE tview = tv;
    IF whole THEN
        DELETE FROM tviews.failed_key WHERE tview = tv;
    END IF;
    FOR dep IN SELECT DISTINCT s.tview FROM tviews.source s WHERE s.source = tv LOOP
        PERFORM tviews._enqueue(dep, NULL);
    END LOOP;
END
$$;

CREATE FUNCTION pg_tviews_refresh(tview_name text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    t tviews.tview := tviews.check_refresh_privilege(tview_name::regclass);
    started timestamptz := clock_timestamp();
    n bigint;
BEGIN
    EXECUTE tviews.refresh_sql(t.tview, 'all') INTO n;
    PERFORM tviews.note_refresh(t.tview, started, true);
    RETURN n;
END
$$;
COMMENT ON FUNCTION pg_tviews_refresh(text) IS
'recomputes a whole TVIEW now (rows that did not change are not written); returns rows written or deleted';

CREATE FUNCTION pg_tviews_refresh_row(tview_name text, key text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    t tviews.tview := tviews.check_refresh_privilege(tview_name::regclass);
    started timestamptz := clock_timestamp();
    n bigint;
BEGIN
    EXECUTE tviews.refresh_sql(t.tview, 'keys') INTO n USING ARRAY[key];
    DELETE FROM tviews.failed_key f WHERE f.tview = t.tview AND f.key = pg_tviews_refresh_row.key;
    PERFORM tviews.note_refresh(t.tview, started, false);
    RETURN n;
END
$$;
COMMENT ON FUNCTION pg_tviews_refresh_row(text, text) IS
'recomputes the row of one key now; returns rows written or deleted (0 when already current)';

CREATE FUNCTION pg_tviews_refresh_range(tview_name text, lo text, hi text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    t tviews.tview := tviews.check_refresh_privilege(tview_name::regclass);
    started timestamptz := clock_timestamp();
    n bigint;
BEGIN
    EXECUTE tviews.refresh_sql(t.tview, 'range') INTO n USING lo, hi;
    PERFORM tviews.note_refresh(t.tview, started, false);
    RETURN n;
END
$$;
COMMENT ON FUNCTION pg_tviews_refresh_range(text, text, text) IS
'recomputes the rows whose key is between lo and hi (inclusive); returns rows written or deleted';

-- ---------------------------------------------------------------------
-- Plain DROP TABLE of a TVIEW, and DROP ... CASCADE of what its
-- definition reads, keep the catalog right.
-- ---------------------------------------------------------------------
CREATE FUNCTION tviews.on_sql_drop() RETURNS event_trigger
LANGUAGE plpgsql AS $$
DECLARE
    obj record;
    t record;
BEGIN
    FOR obj IN SELECT * FROM pg_event_trigger_dropped_objects()
               WHERE classid = 'pg_class'::regclass AND objsubid = 0 LOOP
        -- the TVIEW table itself: forget it, drop its definition
        FOR t IN DELETE FROM tviews.tview WHERE tview::oid = obj.objid RETURNING * LOOP
            IF EXISTS (SELECT FROM pg_class WHERE oid = t.backing_view::oid) THEN
                EXECUTE format('DROP VIEW %s', t.backing_view);
            END IF;
        END LOOP;
        -- its definition (DROP ... CASCADE of a base table): the TVIEW
        -- cannot be maintained any more and goes too
        FOR t IN DELETE FROM tviews.tview WHERE backing_view::oid = obj.objid RETURNING * LOOP
            IF EXISTS (SELECT FROM pg_class WHERE oid = t.tview::oid) THEN
                RAISE NOTICE 'dropping TVIEW % because its definition was dropped', t.tview;
                EXECUTE format('DROP TABLE %s', t.tview);
            END IF;
        END LOOP;
    END LOOP;
    IF EXISTS (SELECT FROM tviews.tracked k
               WHERE NOT EXISTS (SELECT FROM pg_class c WHERE c.oid = k.relid::oid))
       OR EXISTS (SELECT FROM tviews.tracked k
                  WHERE NOT EXISTS (SELECT FROM tviews.source s WHERE s.source = k.relid)) THEN
        DELETE FROM tviews.tracked k
         WHERE NOT EXISTS (SELECT FROM pg_class c WHERE c.oid = k.relid::oid);
        PERFORM tviews.sync_tracked();
    END IF;
END
$$;
CREATE EVENT TRIGGER pg_tviews_sql_drop ON sql_drop
    EXECUTE FUNCTION tviews.on_sql_drop();

-- A slot left by an earlier installation in this database is stale: its
-- unconfirmed changes refer to catalog tables that no longer exist.  Stop
-- whatever still streams it and drop it; the engine makes a fresh one.
DO $$
DECLARE
    slot name := pg_tviews_slot_name();
    holder int;
BEGIN
    SELECT active_pid INTO holder FROM pg_replication_slots WHERE slot_name = slot;
    IF holder IS NOT NULL THEN
        PERFORM pg_terminate_backend(holder);
        FOR i IN 1..500 LOOP
            EXIT WHEN NOT EXISTS (SELECT FROM pg_replication_slots
                                  WHERE slot_name = slot AND active);
            PERFORM pg_sleep(0.01);
        END LOOP;
    END IF;
    IF EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = slot) THEN
        PERFORM pg_drop_replication_slot(slot);
        RAISE NOTICE 'dropped stale replication slot "%" of an earlier pg_tviews installation', slot;
    END IF;
END
$$;

-- the engine of this database starts now
SELECT tviews._wakeup();
