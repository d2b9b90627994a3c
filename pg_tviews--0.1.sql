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
