--
-- Replica identity: what "key" and "identity" (the old values) carry under
-- each REPLICA IDENTITY setting, for updates that change the key or not,
-- and for deletes.
--
SELECT 'init' FROM pg_create_logical_replication_slot('ident', 'pg_tviews_decoder');

CREATE TABLE id_default (id int PRIMARY KEY, code text NOT NULL, val text);
CREATE TABLE id_full (id int PRIMARY KEY, code text NOT NULL, val text);
ALTER TABLE id_full REPLICA IDENTITY FULL;
CREATE TABLE id_index (id int PRIMARY KEY, code text NOT NULL, val text);
CREATE UNIQUE INDEX id_index_code ON id_index (code);
ALTER TABLE id_index REPLICA IDENTITY USING INDEX id_index_code;
CREATE TABLE id_nothing (id int PRIMARY KEY, code text NOT NULL, val text);
ALTER TABLE id_nothing REPLICA IDENTITY NOTHING;
CREATE TABLE id_nokey (id int, code text, val text);
CREATE TABLE id_full_nokey (id int, code text, val text);
ALTER TABLE id_full_nokey REPLICA IDENTITY FULL;
CREATE TABLE id_composite (a int, b text, val text, PRIMARY KEY (b, a));

SELECT relname, relreplident FROM pg_class
WHERE relname LIKE 'id\_%' AND relkind = 'r' ORDER BY relname;

-- the same workload on each table: insert, update a non-key column,
-- update the key (id, then code), delete
CREATE FUNCTION id_workload(tab regclass) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format('INSERT INTO %s VALUES (1, %L, %L), (2, %L, NULL)', tab, 'a', 'x', 'b');
  EXECUTE format('UPDATE %s SET val = %L WHERE id = 1', tab, 'y');
  EXECUTE format('UPDATE %s SET id = 10 WHERE id = 1', tab);
  EXECUTE format('UPDATE %s SET code = %L WHERE id = 10', tab, 'A');
  EXECUTE format('DELETE FROM %s WHERE id = 10', tab);
  EXECUTE format('DELETE FROM %s WHERE id = 2', tab);
END $$;

-- DEFAULT with a primary key: key = pk; old pk only when it changed, and
-- on delete
SELECT id_workload('id_default');
SELECT * FROM decode('ident');

-- FULL: key = pk; every old column on every update and delete
SELECT id_workload('id_full');
SELECT * FROM decode('ident');

-- USING INDEX (code): key = the identity index, not the pk; old code only
-- when code changed (changing id alone carries no identity), and on delete
SELECT id_workload('id_index');
SELECT * FROM decode('ident');

-- NOTHING: key = pk, but no old values at all, even on delete
SELECT id_workload('id_nothing');
SELECT * FROM decode('ident');

-- no primary key, DEFAULT identity: no key and no old values
SELECT id_workload('id_nokey');
SELECT * FROM decode('ident');

-- no primary key, FULL: no key, every old column
SELECT id_workload('id_full_nokey');
SELECT * FROM decode('ident');

-- a composite primary key (declared as (b, a))
INSERT INTO id_composite VALUES (1, 'one', 'x');
UPDATE id_composite SET val = 'y';
UPDATE id_composite SET b = 'uno';
DELETE FROM id_composite;
SELECT * FROM decode('ident');

-- changing the identity is picked up by the next change
INSERT INTO id_default VALUES (3, 'c', 'z');
ALTER TABLE id_default REPLICA IDENTITY FULL;
UPDATE id_default SET val = 'zz';
ALTER TABLE id_default REPLICA IDENTITY NOTHING;
DELETE FROM id_default;
SELECT * FROM decode('ident');

-- FULL after ADD COLUMN ... DEFAULT and DROP COLUMN: the old row, written
-- before the column existed, shows the default; dropped columns are gone
INSERT INTO id_full VALUES (5, 'e', 'v');
ALTER TABLE id_full ADD COLUMN extra int DEFAULT 7;
ALTER TABLE id_full DROP COLUMN val;
UPDATE id_full SET code = 'E';
DELETE FROM id_full;
SELECT * FROM decode('ident');

SELECT pg_drop_replication_slot('ident');
DROP FUNCTION id_workload(regclass);
DROP TABLE id_default, id_full, id_index, id_nothing, id_nokey, id_full_nokey,
  id_composite;
