--
-- TRUNCATE: one line per statement listing the (included) tables, with
-- the CASCADE and RESTART IDENTITY flags.
--
SELECT 'init' FROM pg_create_logical_replication_slot('trunc', 'pg_tviews_decoder');

CREATE TABLE tr_a (id int PRIMARY KEY);
CREATE TABLE tr_b (id serial PRIMARY KEY, v text);
CREATE TABLE tr_parent (id int PRIMARY KEY);
CREATE TABLE tr_child (id int PRIMARY KEY, parent int REFERENCES tr_parent);
CREATE SCHEMA tr_other;
CREATE TABLE tr_other.tr_c (id int);
INSERT INTO tr_a VALUES (1);
INSERT INTO tr_b (v) VALUES ('x'), ('y');
INSERT INTO tr_parent VALUES (1);
INSERT INTO tr_child VALUES (1, 1);
SELECT count(*) AS consumed FROM decode('trunc');

-- one table
TRUNCATE tr_a;
-- several tables in one statement: one line
TRUNCATE tr_a, tr_b, tr_other.tr_c;
-- CASCADE reaches the referencing table
TRUNCATE tr_parent CASCADE;
-- RESTART IDENTITY
TRUNCATE tr_b RESTART IDENTITY;
-- a truncate next to other changes, in one transaction
BEGIN;
INSERT INTO tr_a VALUES (2);
TRUNCATE tr_a;
INSERT INTO tr_a VALUES (3);
COMMIT;
SELECT * FROM peek('trunc');

-- include-tables: only included relations are listed; a truncate of no
-- included table gives no line (and no empty transaction)
SELECT * FROM peek('trunc', 'include-tables', 'public.tr_b,public.tr_child');
SELECT * FROM peek('trunc', 'include-tables', 'tr_other.*');
SELECT * FROM peek('trunc', 'exclude-tables', 'public.*');

-- actions without truncate: no truncate lines at all
SELECT * FROM peek('trunc', 'actions', 'insert,update,delete,message');
-- actions with truncate only
SELECT * FROM decode('trunc', 'actions', 'truncate');

-- a truncate inside an aborted transaction is not decoded
BEGIN;
TRUNCATE tr_a;
ROLLBACK;
SELECT * FROM decode('trunc');

SELECT pg_drop_replication_slot('trunc');
DROP TABLE tr_a, tr_b, tr_child, tr_parent, tr_other.tr_c;
DROP SCHEMA tr_other;
