--
-- Filters: include-tables / exclude-tables patterns, actions, only-local
-- (replication origins), columns=key (with lineage-columns) and
-- include-types.
--
SELECT 'init' FROM pg_create_logical_replication_slot('filters', 'pg_tviews_decoder');

CREATE SCHEMA fl_a;
CREATE SCHEMA fl_b;
CREATE SCHEMA "fl.dot";
CREATE TABLE fl_a.tb_one (id int PRIMARY KEY);
CREATE TABLE fl_a.tb_two (id int PRIMARY KEY);
CREATE TABLE fl_a.other (id int PRIMARY KEY);
CREATE TABLE fl_a."odd.name,x" (id int PRIMARY KEY);
CREATE TABLE fl_a.odd (id int PRIMARY KEY);
CREATE TABLE fl_a."star*" (id int PRIMARY KEY);
CREATE TABLE fl_a."starX" (id int PRIMARY KEY);
CREATE TABLE fl_a."Mixed" (id int PRIMARY KEY);
CREATE TABLE fl_b.tb_one (id int PRIMARY KEY);
CREATE TABLE fl_b.tbone (id int PRIMARY KEY);
CREATE TABLE "fl.dot".tb_x (id int PRIMARY KEY);
CREATE TABLE public.fl_p (id int PRIMARY KEY, fk int, note text);

-- one insert into every table, in one transaction
BEGIN;
INSERT INTO fl_a.tb_one VALUES (1);
INSERT INTO fl_a.tb_two VALUES (1);
INSERT INTO fl_a.other VALUES (1);
INSERT INTO fl_a."odd.name,x" VALUES (1);
INSERT INTO fl_a.odd VALUES (1);
INSERT INTO fl_a."star*" VALUES (1);
INSERT INTO fl_a."starX" VALUES (1);
INSERT INTO fl_a."Mixed" VALUES (1);
INSERT INTO fl_b.tb_one VALUES (1);
INSERT INTO fl_b.tbone VALUES (1);
INSERT INTO "fl.dot".tb_x VALUES (1);
INSERT INTO public.fl_p VALUES (1, 10, 'x');
COMMIT;

-- the tables whose inserts pass the given options
CREATE FUNCTION fl_seen(VARIADIC opts text[]) RETURNS text LANGUAGE sql AS $$
  SELECT coalesce(string_agg(format('%s.%s', j->>'schema', j->>'table'), ' ' ORDER BY n),
                  '(nothing)')
  FROM (SELECT n, replace(line, '"relid":*', '"relid":0')::jsonb AS j
        FROM peek('filters', VARIADIC opts) WITH ORDINALITY AS p(line, n)) l
  WHERE j->>'action' = 'I'
$$;

SELECT fl_seen(VARIADIC '{}');
-- exact names
SELECT fl_seen('include-tables', 'fl_a.tb_one');
SELECT fl_seen('include-tables', 'fl_a.tb_one,public.fl_p');
SELECT fl_seen('include-tables', ' fl_a.tb_one , fl_b.tb_one ');
SELECT fl_seen('include-tables', 'fl_a.no_such_table');
-- names are case-sensitive, as stored
SELECT fl_seen('include-tables', 'fl_a.mixed');
SELECT fl_seen('include-tables', 'fl_a.Mixed');
-- schema wildcard
SELECT fl_seen('include-tables', 'fl_a.*');
SELECT fl_seen('include-tables', 'fl_b.*');
-- table wildcard, in any schema
SELECT fl_seen('include-tables', '*.tb_*');
SELECT fl_seen('include-tables', '*.tb*one');
SELECT fl_seen('include-tables', 'fl_*.*e*');
SELECT fl_seen('include-tables', '*.*');
-- exclusion wins over inclusion
SELECT fl_seen('include-tables', 'fl_a.*', 'exclude-tables', 'fl_a.tb_two');
SELECT fl_seen('include-tables', 'fl_a.tb_one', 'exclude-tables', 'fl_a.tb_one');
SELECT fl_seen('include-tables', '*.tb_*', 'exclude-tables', 'fl_b.*,fl_a.tb_o*');
-- exclude-tables alone
SELECT fl_seen('exclude-tables', 'fl_a.*,fl_b.*');
-- a dot and a comma in a name, escaped; an escaped star is literal
SELECT fl_seen('include-tables', 'fl_a.odd\.name\,x');
SELECT fl_seen('include-tables', 'fl_a.odd\.*');
SELECT fl_seen('exclude-tables', 'fl_a.*\,*,fl_b.*,fl_a.tb_*');
SELECT fl_seen('include-tables', 'fl\.dot.*');
SELECT fl_seen('include-tables', 'fl_a.star\*');
SELECT fl_seen('include-tables', 'fl_a.star*');

-- actions
UPDATE public.fl_p SET note = 'y';
DELETE FROM public.fl_p;
INSERT INTO public.fl_p VALUES (2, 20, 'z');
SELECT * FROM decode('filters', 'actions', 'insert,delete',
                     'include-tables', 'public.fl_p');

-- only-local: changes replicated in (made under a replication origin) are
-- skipped; without it, their BEGIN names the origin
SELECT 'created' FROM pg_replication_origin_create('fl_origin');
SELECT pg_replication_origin_session_setup('fl_origin');
INSERT INTO public.fl_p VALUES (100, 1, 'from elsewhere');
SELECT pg_replication_origin_session_reset();
INSERT INTO public.fl_p VALUES (101, 1, 'local');
SELECT * FROM peek('filters', 'only-local', 'true');
SELECT * FROM peek('filters', 'only-local', 'false');
SELECT * FROM peek('filters');
-- the origin is also there with every key on
SELECT data::jsonb->>'origin' AS origin, data::jsonb ? 'xid' AS xid
FROM pg_logical_slot_peek_changes('filters', NULL, NULL)
WHERE data::jsonb->>'action' = 'B';
SELECT count(*) AS consumed FROM decode('filters');
SELECT pg_replication_origin_drop('fl_origin');

-- columns=key: new tuples carry the key only, plus lineage-columns
UPDATE public.fl_p SET note = 'key only' WHERE id = 2;
UPDATE public.fl_p SET id = 3 WHERE id = 2;
DELETE FROM public.fl_p WHERE id = 3;
SELECT * FROM peek('filters', 'columns', 'key');
SELECT * FROM peek('filters', 'columns', 'key', 'lineage-columns', 'public.fl_p.fk');
SELECT * FROM peek('filters', 'columns', 'key', 'lineage-columns', '*.fl_*.f*,*.*.no_such_column');
SELECT count(*) AS consumed FROM decode('filters');
-- a table without a key: nothing but lineage columns
CREATE TABLE public.fl_nokey (a int, b int);
INSERT INTO public.fl_nokey VALUES (1, 2);
SELECT * FROM decode('filters', 'columns', 'key', 'lineage-columns', 'public.fl_nokey.b');
-- REPLICA IDENTITY FULL: with columns=key the old tuple is cut down the
-- same way; with columns=all it is whole
ALTER TABLE public.fl_p REPLICA IDENTITY FULL;
INSERT INTO public.fl_p VALUES (4, 40, 'full');
UPDATE public.fl_p SET note = 'full, updated' WHERE id = 4;
DELETE FROM public.fl_p WHERE id = 4;
SELECT * FROM peek('filters', 'columns', 'key', 'lineage-columns', 'public.fl_p.fk');
SELECT * FROM peek('filters', 'columns', 'key');
SELECT * FROM peek('filters', 'columns', 'all');

-- include-types=false: no "type" anywhere
SELECT * FROM decode('filters', 'include-types', 'false');

SELECT pg_drop_replication_slot('filters');
DROP FUNCTION fl_seen(text[]);
DROP TABLE fl_a.tb_one, fl_a.tb_two, fl_a.other, fl_a."odd.name,x", fl_a.odd,
  fl_a."star*", fl_a."starX", fl_a."Mixed", fl_b.tb_one, fl_b.tbone, "fl.dot".tb_x;
DROP SCHEMA fl_a, fl_b, "fl.dot";
DROP TABLE public.fl_p, public.fl_nokey;
