--
-- Dropping TVIEWs (pg_tviews_drop, plain DROP TABLE, DROP ... CASCADE of
-- what they read), refreshing them by hand, TRUNCATE of base tables, and
-- DROP EXTENSION / CREATE EXTENSION with pg_tviews_convert_existing_table.
--
\set SHOW_CONTEXT never
CREATE TABLE tb_user (pk_user int PRIMARY KEY, name text NOT NULL);
CREATE TABLE tb_post (pk_post int PRIMARY KEY, fk_user int NOT NULL REFERENCES tb_user,
                      title text NOT NULL);
CREATE TABLE tb_comment (pk_comment int PRIMARY KEY,
                         fk_post int NOT NULL REFERENCES tb_post, body text NOT NULL);
INSERT INTO tb_user SELECT i, 'user ' || i FROM generate_series(1, 5) i;
INSERT INTO tb_post SELECT 10 + i, 1 + i % 5, 'post ' || i FROM generate_series(0, 9) i;
INSERT INTO tb_comment SELECT 100 + i, 10 + i % 7, 'comment ' || i FROM generate_series(0, 19) i;

-- what the catalog holds, by name
CREATE VIEW catalog AS
    SELECT 'tview' AS what, tview::text AS name FROM tviews.tview
    UNION ALL SELECT 'source', tview::text || ' <- ' || source::text FROM tviews.source
    UNION ALL SELECT 'tracked', relid::text FROM tviews.tracked;

--
-- Plain DROP TABLE of a TVIEW: its catalog rows and its backing view go
--
SELECT pg_tviews_create('tv_user', 'SELECT u.pk_user, u.name FROM tb_user u');
SELECT pg_tviews_create('tv_post', $$
    SELECT p.pk_post, p.fk_user, p.title,
           (SELECT count(*) FROM tb_comment c WHERE c.fk_post = p.pk_post) AS comments
    FROM tb_post p$$);
SELECT * FROM catalog ORDER BY 1, 2;
DROP TABLE tv_user;
SELECT * FROM catalog ORDER BY 1, 2;
SELECT to_regclass('tv_user') IS NULL AS no_table, to_regclass('tv_user_def') IS NULL AS no_view;
-- in a transaction that rolls back, nothing happens
BEGIN;
DROP TABLE tv_post;
SELECT count(*) FROM tviews.tview;
ROLLBACK;
SELECT * FROM catalog ORDER BY 1, 2;

--
-- pg_tviews_drop()
--
SELECT pg_tviews_create('tv_user', 'SELECT u.pk_user, u.name FROM tb_user u');
SELECT pg_tviews_drop('tv_user');
SELECT * FROM catalog ORDER BY 1, 2;
SELECT to_regclass('tv_user') IS NULL AS no_table, to_regclass('tv_user_def') IS NULL AS no_view;

--
-- Dropping what a TVIEW reads
--
-- the backing view depends on the base tables: a plain DROP is refused
DROP TABLE tb_comment;
-- CASCADE drops the backing view, and the TVIEW with it
DROP TABLE tb_comment CASCADE;
SELECT * FROM catalog ORDER BY 1, 2;
SELECT to_regclass('tv_post') IS NULL AS no_table, to_regclass('tv_post_def') IS NULL AS no_view;
CREATE TABLE tb_comment (pk_comment int PRIMARY KEY,
                         fk_post int NOT NULL REFERENCES tb_post, body text NOT NULL);
INSERT INTO tb_comment SELECT 100 + i, 10 + i % 7, 'comment ' || i FROM generate_series(0, 19) i;

-- dropping the backing view alone drops the TVIEW as well
SELECT pg_tviews_create('tv_user', 'SELECT u.pk_user, u.name FROM tb_user u');
DROP VIEW tv_user_def;
SELECT * FROM catalog ORDER BY 1, 2;
SELECT to_regclass('tv_user') IS NULL AS no_table;

-- a TVIEW built on a TVIEW: its backing view depends on the TVIEW below
SELECT pg_tviews_create('tv_post', $$
    SELECT p.pk_post, p.fk_user, p.title,
           (SELECT count(*) FROM tb_comment c WHERE c.fk_post = p.pk_post) AS comments
    FROM tb_post p$$);
SELECT pg_tviews_create('tv_post_summary', $$
    SELECT t.pk_post, t.title || ' (' || t.comments || ')' AS summary FROM tv_post t$$);
DROP TABLE tv_post;
DROP TABLE tv_post CASCADE;
SELECT * FROM catalog ORDER BY 1, 2;
SELECT to_regclass('tv_post_summary') IS NULL AS no_table,
       to_regclass('tv_post_summary_def') IS NULL AS no_view;

-- DROP SCHEMA ... CASCADE with TVIEWs in it: table and backing view go
-- in the same statement
CREATE SCHEMA drop_me;
SELECT pg_tviews_create('drop_me.tv_user', 'SELECT u.pk_user, u.name FROM public.tb_user u');
DROP SCHEMA drop_me CASCADE;
SELECT * FROM catalog ORDER BY 1, 2;
-- (should the DROP SCHEMA above fail, clean up quietly so that the rest of
-- this file still runs as intended)
SET client_min_messages = warning;
DO $$
BEGIN
    IF to_regnamespace('drop_me') IS NOT NULL THEN
        DELETE FROM tviews.tview WHERE tview::text LIKE 'drop_me.%';
        PERFORM tviews.sync_tracked();
        DROP SCHEMA drop_me CASCADE;
    END IF;
END
$$;
RESET client_min_messages;

--
-- Manual refresh: pg_tviews_refresh, pg_tviews_refresh_row,
-- pg_tviews_refresh_range return the number of rows written or deleted
--
SELECT pg_tviews_create('tv_post', $$
    SELECT p.pk_post, p.fk_user, p.title,
           (SELECT count(*) FROM tb_comment c WHERE c.fk_post = p.pk_post) AS comments
    FROM tb_post p$$);
SELECT pg_tviews_create('tv_post_summary', $$
    SELECT t.pk_post, t.title || ' (' || t.comments || ')' AS summary FROM tv_post t$$);
-- already current: nothing to write
SELECT pg_tviews_wait('30s');
SELECT pg_tviews_refresh('tv_post');
SELECT pg_tviews_refresh_row('tv_post', '10');
SELECT pg_tviews_refresh_range('tv_post', '10', '19');
SELECT full_refreshes FROM tviews.tview WHERE tview = 'tv_post'::regclass;

-- damage the TVIEW by hand: a wrong row, a missing row, a row too many
-- (once the engine is idle: a manual refresh queues the TVIEWs built on
-- this one, here tv_post_summary)
SELECT pg_tviews_wait('30s');
UPDATE tv_post SET title = 'wrong', comments = -1 WHERE pk_post = 10;
DELETE FROM tv_post WHERE pk_post = 11;
INSERT INTO tv_post VALUES (99, 1, 'not in the definition', 0);
SELECT * FROM tview_diff('tv_post');
SELECT pg_tviews_refresh('tv_post');
SELECT * FROM tview_diff('tv_post');
SELECT pg_tviews_refresh('tv_post');
SELECT full_refreshes FROM tviews.tview WHERE tview = 'tv_post'::regclass;
SELECT * FROM tv_post WHERE pk_post IN (10, 11, 99) ORDER BY pk_post;

-- one key: a wrong row is rewritten, a missing row inserted, a row that
-- the definition does not give deleted; a key in neither: 0
UPDATE tv_post SET title = 'wrong' WHERE pk_post = 12;
DELETE FROM tv_post WHERE pk_post = 13;
INSERT INTO tv_post VALUES (98, 1, 'not in the definition', 0);
SELECT pg_tviews_refresh_row('tv_post', '12');
SELECT pg_tviews_refresh_row('tv_post', '12');
SELECT pg_tviews_refresh_row('tv_post', '13');
SELECT pg_tviews_refresh_row('tv_post', '98');
SELECT pg_tviews_refresh_row('tv_post', '12345');
SELECT * FROM tview_diff('tv_post');

-- a range of keys (inclusive); rows outside it are left alone
UPDATE tv_post SET comments = comments + 100 WHERE pk_post IN (14, 15, 16);
DELETE FROM tv_post WHERE pk_post = 17;
SELECT pg_tviews_refresh_range('tv_post', '14', '15');
SELECT * FROM tview_diff('tv_post');
SELECT pg_tviews_refresh_range('tv_post', '16', '17');
SELECT pg_tviews_refresh_range('tv_post', '17', '16');
SELECT * FROM tview_diff('tv_post');

-- the TVIEW built on tv_post is refreshed by the engine after a manual
-- refresh of tv_post
SELECT pg_tviews_wait('30s');
SELECT * FROM tview_diff('tv_post_summary');
UPDATE tv_post SET title = 'wrong' WHERE pk_post = 18;
SELECT pg_tviews_refresh('tv_post_summary');
SELECT summary FROM tv_post_summary WHERE pk_post = 18;
SELECT pg_tviews_refresh_row('tv_post', '18');
SELECT pg_tviews_wait('30s');
SELECT summary FROM tv_post_summary WHERE pk_post = 18;
SELECT * FROM tview_diff('tv_post_summary');

--
-- TRUNCATE of base tables
--
SELECT pg_tviews_create('tv_user', $$
    SELECT u.pk_user, u.name, (SELECT count(*) FROM tb_post p WHERE p.fk_user = u.pk_user) AS posts
    FROM tb_user u$$);
TRUNCATE tb_comment;
SELECT pg_tviews_wait('30s');
SELECT * FROM tview_diff('tv_post');
SELECT sum(comments) FROM tv_post;
INSERT INTO tb_comment VALUES (200, 10, 'after truncate');
BEGIN;
TRUNCATE tb_comment;
INSERT INTO tb_comment VALUES (201, 11, 'truncated and refilled');
COMMIT;
SELECT pg_tviews_wait('30s');
SELECT pk_post, comments FROM tv_post WHERE comments > 0 ORDER BY pk_post;
SELECT * FROM tview_diff('tv_post');
-- several tables at once
TRUNCATE tb_user, tb_post, tb_comment;
SELECT pg_tviews_wait('30s');
SELECT 'tv_user' AS tview, * FROM tview_diff('tv_user')
UNION ALL SELECT 'tv_post', * FROM tview_diff('tv_post')
UNION ALL SELECT 'tv_post_summary', * FROM tview_diff('tv_post_summary');
SELECT (SELECT count(*) FROM tv_user) AS users, (SELECT count(*) FROM tv_post) AS posts,
       (SELECT count(*) FROM tv_post_summary) AS summaries;
INSERT INTO tb_user SELECT i, 'user ' || i FROM generate_series(1, 5) i;
INSERT INTO tb_post SELECT 10 + i, 1 + i % 5, 'post ' || i FROM generate_series(0, 9) i;
INSERT INTO tb_comment SELECT 100 + i, 10 + i % 7, 'comment ' || i FROM generate_series(0, 19) i;
SELECT pg_tviews_wait('30s');
SELECT 'tv_user' AS tview, * FROM tview_diff('tv_user')
UNION ALL SELECT 'tv_post', * FROM tview_diff('tv_post')
UNION ALL SELECT 'tv_post_summary', * FROM tview_diff('tv_post_summary');
SELECT * FROM tv_user ORDER BY pk_user;

--
-- DROP EXTENSION leaves the TVIEW tables and their backing views behind;
-- after CREATE EXTENSION, pg_tviews_convert_existing_table() makes them
-- TVIEWs again from those views.
--
-- The regression helpers of sql/setup.sql are not members of the
-- extension, and neither are the TVIEW tables nor their views.
SELECT count(*) AS members_outside_the_extension_schema
FROM pg_depend d
JOIN pg_extension e ON d.refclassid = 'pg_extension'::regclass AND d.refobjid = e.oid
WHERE e.extname = 'pg_tviews' AND d.deptype = 'e'
  AND (d.classid = 'pg_class'::regclass AND d.objid IN (SELECT tview FROM tviews.tview UNION ALL SELECT backing_view FROM tviews.tview)
       OR d.classid = 'pg_proc'::regclass AND d.objid IN ('decode(name, text[])'::regprocedure,
                                                          'peek(name, text[])'::regprocedure,
                                                          'binary_as_json(name, text[])'::regprocedure));
CREATE TEMP TABLE engine_slot AS SELECT pg_tviews_slot_name() AS slot_name;
DROP VIEW catalog;
DROP EXTENSION pg_tviews CASCADE;
-- the engine drops its slot once the extension is gone
DO $$
BEGIN
    FOR i IN 1..3000 LOOP
        EXIT WHEN NOT EXISTS (SELECT FROM pg_replication_slots JOIN engine_slot USING (slot_name));
        PERFORM pg_sleep(0.01);
    END LOOP;
END
$$;
SELECT count(*) AS engine_slots FROM pg_replication_slots JOIN engine_slot USING (slot_name);
SELECT to_regnamespace('tviews') IS NULL AS no_catalog;
SELECT c.relname, c.relkind FROM pg_class c
WHERE c.relnamespace = 'public'::regnamespace AND c.relname LIKE 'tv\_%' AND c.relkind IN ('r', 'v')
ORDER BY c.relname;
SELECT to_regprocedure('decode(name, text[])') IS NOT NULL AS setup_helpers_kept;
-- without the extension, CREATE TABLE tv_x AS is a plain table
CREATE TABLE tv_plain AS SELECT u.pk_user FROM tb_user u;
SELECT to_regclass('tv_plain_def') IS NULL AS no_view;
-- writes meanwhile are not applied to the (now plain) tables
UPDATE tb_user SET name = 'renamed' WHERE pk_user = 1;
INSERT INTO tb_comment VALUES (300, 10, 'while the extension was gone');
SELECT name FROM tv_user WHERE pk_user = 1;

CREATE EXTENSION pg_tviews;
CREATE VIEW catalog AS
    SELECT 'tview' AS what, tview::text AS name FROM tviews.tview
    UNION ALL SELECT 'source', tview::text || ' <- ' || source::text FROM tviews.source
    UNION ALL SELECT 'tracked', relid::text FROM tviews.tracked;
SELECT * FROM catalog ORDER BY 1, 2;
SELECT pg_tviews_convert_existing_table('tv_user');
SELECT pg_tviews_convert_existing_table('tv_post');
SELECT pg_tviews_convert_existing_table('tv_post_summary');
SELECT tview, backing_view, key_column FROM tviews.tview ORDER BY tview::text;
SELECT tview, source, rule, source_column, tview_column, source_is_tview FROM tviews.source
ORDER BY tview::text, source::text, rule;
SELECT relid, lineage_columns FROM tviews.tracked ORDER BY relid::text;
-- the content is brought up to date by the conversion
SELECT 'tv_user' AS tview, * FROM tview_diff('tv_user')
UNION ALL SELECT 'tv_post', * FROM tview_diff('tv_post')
UNION ALL SELECT 'tv_post_summary', * FROM tview_diff('tv_post_summary');
SELECT name FROM tv_user WHERE pk_user = 1;
SELECT comments FROM tv_post WHERE pk_post = 10;
-- and the engine maintains them again
UPDATE tb_user SET name = 'user 1' WHERE pk_user = 1;
INSERT INTO tb_post VALUES (20, 2, 'post 10');
DELETE FROM tb_comment WHERE pk_comment = 300;
SELECT pg_tviews_wait('30s');
SELECT 'tv_user' AS tview, * FROM tview_diff('tv_user')
UNION ALL SELECT 'tv_post', * FROM tview_diff('tv_post')
UNION ALL SELECT 'tv_post_summary', * FROM tview_diff('tv_post_summary');
SELECT * FROM tv_user ORDER BY pk_user;
-- tv_plain stays a plain table
SELECT count(*) FROM tviews.tview WHERE tview = 'tv_plain'::regclass;

--
-- Clean up; the extension is installed as --load-extension left it
--
SELECT pg_tviews_drop('tv_post_summary');
SELECT pg_tviews_drop('tv_post');
DROP TABLE tv_user, tv_plain;
SELECT * FROM catalog ORDER BY 1, 2;
DROP VIEW catalog;
DROP TABLE tb_comment, tb_post, tb_user, engine_slot;
SELECT e.extname, n.nspname, e.extversion FROM pg_extension e
JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_tviews';
SELECT pg_tviews_wait('30s');
