--
-- Column values of many types in the json format.  Every line must be valid
-- JSON (decode() parses each one) and every value must survive the trip:
-- the value read back from the line equals what was written.
--
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
SET bytea_output = 'hex';
-- the unicode cases below assume a UTF8 database
SELECT getdatabaseencoding();

SELECT 'init' FROM pg_create_logical_replication_slot('types', 'pg_tviews_decoder');

CREATE TYPE ty_mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN ty_posint AS int CHECK (VALUE > 0);

CREATE TABLE ty_text (id int PRIMARY KEY, t text, what text);
CREATE TABLE ty_int (id int PRIMARY KEY, i2 int2, i4 int4, i8 int8);
CREATE TABLE ty_num (id int PRIMARY KEY, n numeric, f4 float4, f8 float8);
CREATE TABLE ty_misc (id int PRIMARY KEY, b bool, by bytea, ia int[],
                      ta text[], j json, jb jsonb, ts timestamp,
                      tstz timestamptz, d date, u uuid, dom ty_posint,
                      e ty_mood, vc varchar(5), ch char(3));

INSERT INTO ty_text VALUES
  (1, 'it''s "quoted"', 'quotes'),
  (2, 'back\slash \\ \n \u00e9 not escapes', 'backslashes'),
  (3, E'line1\nline2\r\nend', 'newlines'),
  (4, E'a\tb', 'tab'),
  (5, 'ctl' || chr(1) || chr(8) || chr(12) || chr(27) || chr(31) || chr(127) || '.', 'control chars'),
  (6, 'café é ü', 'latin-1 range'),
  (7, '😀 日本', 'outside the BMP, CJK'),
  (8, '</script> / ''', 'slash, html'),
  (9, '', 'empty'),
  (10, NULL, 'null');

INSERT INTO ty_int VALUES
  (1, -32768, -2147483648, -9223372036854775808),
  (2, 32767, 2147483647, 9223372036854775807),
  (3, 0, 0, 0),
  (4, NULL, NULL, NULL);

INSERT INTO ty_num VALUES
  (1, 1.50, 1.5, 1.5),
  (2, 'NaN', 'NaN', 'NaN'),
  (3, 'Infinity', 'Infinity', 'Infinity'),
  (4, '-Infinity', '-Infinity', '-Infinity'),
  (5, 123456789012345678901234567890.123456789012345678901234567890,
      3.4028235e38, 1.7976931348623157e308),
  (6, -0.000000000000000000000000000001, 1.4e-45, 5e-324),
  (7, 0, -0, -0),
  (8, NULL, NULL, NULL);

INSERT INTO ty_misc VALUES
  (1, true, '\x00ff10', '{1,2,NULL}', '{"a \"q\"","b,c",NULL,"d\\e"}',
   '{"a": [1, 2.50], "b": "x\ny"}', '{"b": 1, "a": [true, null]}',
   '2024-02-29 23:59:59.123456', '2024-02-29 23:59:59+02', '2024-02-29',
   'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 42, 'happy', 'abc', 'x'),
  (2, false, '\x', '{}', '{}', '[]', '"s"', 'infinity', '-infinity',
   'infinity', '00000000-0000-0000-0000-000000000000', 1, 'sad', '', ''),
  (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
   NULL, NULL, NULL);

-- keep the lines for the checks below (relid is masked as *: not JSON)
CREATE TEMP TABLE ty_out AS
  SELECT n, line, replace(line, '"relid":*', '"relid":0')::jsonb AS j
  FROM decode('types') WITH ORDINALITY AS d(line, n);

SELECT line FROM ty_out ORDER BY n;

-- every column's value, read back from the line, equals the original
-- (compared as text, which is what the rules promise for these types)
SELECT t.id, t.what,
       (o.j #>> '{columns,1,value}') IS NOT DISTINCT FROM t.t AS same
FROM ty_text t
JOIN ty_out o ON o.j->>'table' = 'ty_text'
             AND (o.j #>> '{columns,0,value}')::int = t.id
ORDER BY t.id;

SELECT t.id,
       (o.j #>> '{columns,1,value}') IS NOT DISTINCT FROM t.i2::text AS i2,
       (o.j #>> '{columns,2,value}') IS NOT DISTINCT FROM t.i4::text AS i4,
       (o.j #>> '{columns,3,value}') IS NOT DISTINCT FROM t.i8::text AS i8,
       jsonb_typeof(o.j #> '{columns,3,value}') AS i8_json_type
FROM ty_int t
JOIN ty_out o ON o.j->>'table' = 'ty_int'
             AND (o.j #>> '{columns,0,value}')::int = t.id
ORDER BY t.id;

-- numeric keeps its exact text (scale included); floats are compared as
-- floats, since jsonb prints exponents differently
SELECT t.id,
       (o.j #>> '{columns,1,value}') IS NOT DISTINCT FROM t.n::text AS n,
       (o.j #>> '{columns,2,value}')::float4 IS NOT DISTINCT FROM t.f4 AS f4,
       (o.j #>> '{columns,3,value}')::float8 IS NOT DISTINCT FROM t.f8 AS f8,
       jsonb_typeof(o.j #> '{columns,1,value}') AS n_json_type,
       jsonb_typeof(o.j #> '{columns,3,value}') AS f8_json_type
FROM ty_num t
JOIN ty_out o ON o.j->>'table' = 'ty_num'
             AND (o.j #>> '{columns,0,value}')::int = t.id
ORDER BY t.id;

-- (SQL NULL of a bool or json column is JSON null too)
SELECT t.id,
       (o.j #> '{columns,1,value}') = coalesce(to_jsonb(t.b), 'null') AS b,
       (o.j #>> '{columns,2,value}') IS NOT DISTINCT FROM t.by::text AS by,
       (o.j #>> '{columns,3,value}')::int[] IS NOT DISTINCT FROM t.ia AS ia,
       (o.j #>> '{columns,4,value}')::text[] IS NOT DISTINCT FROM t.ta AS ta,
       (o.j #> '{columns,5,value}') = coalesce(t.j::jsonb, 'null') AS j,
       (o.j #> '{columns,6,value}') = coalesce(t.jb, 'null') AS jb,
       (o.j #>> '{columns,7,value}')::timestamp IS NOT DISTINCT FROM t.ts AS ts,
       (o.j #>> '{columns,8,value}')::timestamptz IS NOT DISTINCT FROM t.tstz AS tstz,
       (o.j #>> '{columns,9,value}')::date IS NOT DISTINCT FROM t.d AS d,
       (o.j #>> '{columns,10,value}')::uuid IS NOT DISTINCT FROM t.u AS u,
       (o.j #>> '{columns,11,value}')::int IS NOT DISTINCT FROM t.dom AS dom,
       (o.j #>> '{columns,12,value}')::ty_mood IS NOT DISTINCT FROM t.e AS e,
       (o.j #>> '{columns,13,value}') IS NOT DISTINCT FROM t.vc::text AS vc,
       (o.j #>> '{columns,14,value}')::char(3) IS NOT DISTINCT FROM t.ch AS ch
FROM ty_misc t
JOIN ty_out o ON o.j->>'table' = 'ty_misc'
             AND (o.j #>> '{columns,0,value}')::int = t.id
ORDER BY t.id;

-- NULL of every type is JSON null, and every non-null value is present
SELECT o.j->>'table' AS tab, count(*) FILTER (WHERE jsonb_typeof(c->'value') = 'null') AS nulls,
       count(*) FILTER (WHERE NOT c ? 'value') AS missing
FROM ty_out o, jsonb_array_elements(o.j->'columns') c
GROUP BY 1 ORDER BY 1;

-- the json types of the renderings
SELECT DISTINCT c->>'type' AS type, jsonb_typeof(c->'value') AS json_type
FROM ty_out o, jsonb_array_elements(o.j->'columns') c
WHERE o.j->>'table' = 'ty_misc' AND c->>'name' <> 'id'
ORDER BY 1, 2;

-- an UPDATE and a DELETE render old and new values by the same rules
UPDATE ty_text SET t = t || E'\n"x"' WHERE id = 1;
UPDATE ty_text SET id = 11 WHERE id = 3;
DELETE FROM ty_text WHERE id = 5;
SELECT * FROM decode('types');

SELECT pg_drop_replication_slot('types');
DROP TABLE ty_text, ty_int, ty_num, ty_misc;
DROP DOMAIN ty_posint;
DROP TYPE ty_mood;
