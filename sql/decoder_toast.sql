--
-- Out-of-line (TOASTed) values: an UPDATE that leaves one alone does not
-- put it in the WAL, and the decoder says so ("unchanged_toast":true, no
-- "value") instead of leaving the column out or inventing a value.
-- Lines are summarised: the values are 64 kB long.
--
SELECT 'init' FROM pg_create_logical_replication_slot('toast', 'pg_tviews_decoder');

CREATE TABLE toasted (id int PRIMARY KEY, note text, big text, other text);
-- incompressible (md5 hex), so that it is stored out of line
CREATE FUNCTION toast_value(seed text) RETURNS text LANGUAGE sql AS
$$ SELECT string_agg(md5(seed || i::text), '') FROM generate_series(1, 2000) i $$;

-- summary of a line: the action, then each column's value -- big ones
-- named by the seed they were made from -- or the unchanged_toast marker
CREATE FUNCTION toast_show(v text) RETURNS text LANGUAGE sql AS $$
  SELECT CASE WHEN length(v) > 100 THEN
           coalesce((SELECT 'toast_value(' || s || ')'
                     FROM unnest('{a,b,c,d,e,f,g,h}'::text[]) s
                     WHERE toast_value(s) = v),
                    CASE WHEN v = repeat(left(v, 1), length(v))
                         THEN format('repeat(%L, %s)', left(v, 1), length(v))
                         ELSE 'unknown value of length ' || length(v) END)
         ELSE coalesce(v, 'null') END
$$;
CREATE FUNCTION toast_summary(line text) RETURNS text LANGUAGE sql AS $$
  SELECT (j->>'action') ||
         coalesce(' ' || (SELECT string_agg(c->>'name' || '=' ||
                    CASE WHEN c ? 'unchanged_toast'
                         THEN 'unchanged_toast:' || (c->>'unchanged_toast') ||
                              CASE WHEN c ? 'value' THEN ' AND a value' ELSE '' END
                         ELSE toast_show(c->>'value') END, ', ' ORDER BY o)
                  FROM jsonb_array_elements(j->'columns') WITH ORDINALITY AS x(c, o)), '') ||
         coalesce(' | identity: ' || (SELECT string_agg(c->>'name' || '=' ||
                    CASE WHEN c ? 'unchanged_toast'
                         THEN 'unchanged_toast:' || (c->>'unchanged_toast')
                         ELSE toast_show(c->>'value') END, ', ' ORDER BY o)
                  FROM jsonb_array_elements(j->'identity') WITH ORDINALITY AS x(c, o)), '')
  FROM (SELECT replace(line, '"relid":*', '"relid":0')::jsonb AS j) l
$$;

INSERT INTO toasted VALUES (1, 'first', toast_value('a'), 'o');

-- the value really is out of line
SELECT pg_column_size(big) >= length(big) AS incompressible,
       pg_relation_size(reltoastrelid) > 0 AS in_toast_table
FROM toasted, pg_class WHERE pg_class.oid = 'toasted'::regclass;

-- another column changes: big is unchanged_toast
UPDATE toasted SET note = 'second' WHERE id = 1;

-- big itself changes: its new value is there
UPDATE toasted SET big = toast_value('b') WHERE id = 1;

-- in one transaction: insert a toasted row, update it (big unchanged),
-- then update big
BEGIN;
INSERT INTO toasted VALUES (2, 'two', toast_value('c'), 'o');
UPDATE toasted SET note = 'two again' WHERE id = 2;
UPDATE toasted SET big = toast_value('d'), note = 'two, new big' WHERE id = 2;
COMMIT;

-- in a later transaction: update another column, then big
BEGIN;
UPDATE toasted SET other = 'p' WHERE id = 2;
UPDATE toasted SET big = toast_value('e') WHERE id = 2;
COMMIT;

-- setting big to NULL and back
UPDATE toasted SET big = NULL WHERE id = 1;
UPDATE toasted SET big = toast_value('f') WHERE id = 1;

-- deleting a row with a toasted value: only the key (DEFAULT identity)
DELETE FROM toasted WHERE id = 1;

SELECT toast_summary(line) FROM decode('toast') AS line;

-- a value that compresses well stays inline: always present
INSERT INTO toasted VALUES (3, 'three', repeat('g', 10000), 'o');
UPDATE toasted SET other = 'q' WHERE id = 3;
SELECT toast_summary(line) FROM decode('toast') AS line;

-- REPLICA IDENTITY FULL: the old tuple carries the whole toasted value,
-- while the new one marks it unchanged
ALTER TABLE toasted REPLICA IDENTITY FULL;
UPDATE toasted SET other = 'r' WHERE id = 3;
DELETE FROM toasted WHERE id = 3;
UPDATE toasted SET other = 's' WHERE id = 2;
DELETE FROM toasted WHERE id = 2;
SELECT toast_summary(line) FROM decode('toast') AS line;

SELECT pg_drop_replication_slot('toast');
DROP TABLE toasted;
DROP FUNCTION toast_value(text);
DROP FUNCTION toast_summary(text);
DROP FUNCTION toast_show(text);
