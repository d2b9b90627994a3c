--
-- Shared helpers for the regression tests (runs first, see test/schedule).
--
-- decode(slot, options...) consumes a slot with pg_tviews_decoder's json
-- format and returns its lines.  Every line goes through the jsonb parser
-- (an invalid line is an error), relation oids are masked, and xids,
-- timestamps and LSNs are off unless a test turns them back on, so that
-- the expected output does not depend on the run.
CREATE FUNCTION decode(slot name, VARIADIC opts text[] DEFAULT '{}')
RETURNS SETOF text LANGUAGE sql AS $$
  SELECT regexp_replace(data, '"relid":[0-9]+', '"relid":*', 'g')
  FROM pg_logical_slot_get_changes(slot, NULL, NULL,
         VARIADIC ARRAY['include-xids', '0', 'include-timestamp', '0',
                        'include-lsn', '0'] || opts)
  WHERE data::jsonb IS NOT NULL
$$;

-- peek(slot, options...) is decode() without consuming.
CREATE FUNCTION peek(slot name, VARIADIC opts text[] DEFAULT '{}')
RETURNS SETOF text LANGUAGE sql AS $$
  SELECT regexp_replace(data, '"relid":[0-9]+', '"relid":*', 'g')
  FROM pg_logical_slot_peek_changes(slot, NULL, NULL,
         VARIADIC ARRAY['include-xids', '0', 'include-timestamp', '0',
                        'include-lsn', '0'] || opts)
  WHERE data::jsonb IS NOT NULL
$$;

-- binary_as_json(slot, options...) peeks the slot in the binary format and
-- renders the messages with pg_tviews_wire_to_json(), in stream order.
CREATE FUNCTION binary_as_json(slot name, VARIADIC opts text[] DEFAULT '{}')
RETURNS SETOF text LANGUAGE sql AS $$
  SELECT pg_tviews_wire_to_json(
           (SELECT array_agg(data ORDER BY n)
            FROM pg_logical_slot_peek_binary_changes(slot, NULL, NULL,
                   VARIADIC ARRAY['format', 'binary'] || opts)
                 WITH ORDINALITY AS m(lsn, xid, data, n)))
$$;

-- tview_diff(tv): does a TVIEW hold exactly its definition?  Rows of the
-- definition missing from the table, and rows of the table the definition
-- does not give (EXCEPT ALL: duplicates count).  The oracle of the engine
-- tests.
CREATE FUNCTION tview_diff(tv regclass, OUT missing bigint, OUT extra bigint)
LANGUAGE plpgsql AS $$
DECLARE
    -- the backing view's query as it is now (renames are followed)
    def text := (SELECT rtrim(pg_get_viewdef(t.backing_view), ';')
                 FROM tviews.tview t WHERE t.tview = tv);
BEGIN
    EXECUTE format('SELECT (SELECT count(*) FROM ((%s) EXCEPT ALL TABLE %s) m),'
                   '       (SELECT count(*) FROM (TABLE %s EXCEPT ALL (%s)) e)',
                   def, tv, tv, def)
       INTO missing, extra;
END
$$;
