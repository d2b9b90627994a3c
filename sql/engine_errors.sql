--
-- Every error of a TVIEW definition and of the TVIEW functions, with its
-- SQLSTATE.  Nothing is left behind by a failed call.
--
CREATE TABLE tb_user (pk_user int PRIMARY KEY, name text NOT NULL, email text);
CREATE TABLE tb_post (pk_post int PRIMARY KEY, fk_user int NOT NULL REFERENCES tb_user,
                      title text NOT NULL);
INSERT INTO tb_user VALUES (1, 'alice', NULL), (2, 'bob', 'bob@example.com'), (3, 'carol', NULL);
INSERT INTO tb_post VALUES (10, 1, 'a'), (11, 1, 'b'), (12, 2, 'c');

-- err(sql): runs sql and shows the error it raises: SQLSTATE, message,
-- detail and hint, one per line.
CREATE FUNCTION err(sql text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    st text;
    msg text;
    det text;
    hnt text;
BEGIN
    EXECUTE sql;
    RETURN NEXT 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                            det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
    RETURN NEXT st || ': ' || msg;
    IF det <> '' THEN
        RETURN NEXT 'DETAIL: ' || det;
    END IF;
    IF hnt <> '' THEN
        RETURN NEXT 'HINT: ' || hnt;
    END IF;
END
$$;

--
-- The definition
--
-- not a SELECT
SELECT err($$SELECT pg_tviews_create('tv_user', 'INSERT INTO tb_user VALUES (9, ''x'') RETURNING pk_user')$$);
SELECT err($$SELECT pg_tviews_create('tv_user', 'CREATE TABLE x (pk_user int)')$$);
-- two statements (a single trailing semicolon is fine)
SELECT err($$SELECT pg_tviews_create('tv_user', 'SELECT pk_user FROM tb_user; SELECT 1')$$);
-- a volatile function
SELECT err($$SELECT pg_tviews_create('tv_user', 'SELECT pk_user, random() AS r FROM tb_user')$$);
SELECT err($$SELECT pg_tviews_create('tv_user', 'SELECT pk_user, clock_timestamp() AS t FROM tb_user')$$);
-- LIMIT, OFFSET
SELECT err($$SELECT pg_tviews_create('tv_user', 'SELECT pk_user FROM tb_user ORDER BY 1 LIMIT 2')$$);
SELECT err($$SELECT pg_tviews_create('tv_user', 'SELECT pk_user FROM tb_user OFFSET 1')$$);
-- a window function
SELECT err($$SELECT pg_tviews_create('tv_user', 'SELECT pk_user, rank() OVER (ORDER BY name) FROM tb_user')$$);
-- UNION, INTERSECT, EXCEPT
SELECT err($$SELECT pg_tviews_create('tv_user', 'SELECT pk_user FROM tb_user UNION SELECT fk_user FROM tb_post')$$);
SELECT err($$SELECT pg_tviews_create('tv_user', 'SELECT pk_user FROM tb_user EXCEPT SELECT fk_user FROM tb_post')$$);
-- FOR UPDATE, FOR SHARE
SELECT err($$SELECT pg_tviews_create('tv_user', 'SELECT pk_user FROM tb_user FOR UPDATE')$$);
SELECT err($$SELECT pg_tviews_create('tv_user', 'SELECT pk_user FROM tb_user FOR KEY SHARE')$$);
-- a data-modifying WITH
SELECT err($$SELECT pg_tviews_create('tv_user', 'WITH d AS (DELETE FROM tb_post WHERE false RETURNING fk_user) SELECT pk_user FROM tb_user')$$);
-- a syntax error or an unknown relation: PostgreSQL's own errors
SELECT err($$SELECT pg_tviews_create('tv_user', 'SELEC pk_user FROM tb_user')$$);
SELECT err($$SELECT pg_tviews_create('tv_user', 'SELECT pk_user FROM no_such_table')$$);

--
-- The key
--
-- not in the select list
SELECT err($$SELECT pg_tviews_create('tv_user', 'SELECT u.name FROM tb_user u', key => 'pk_user')$$);
-- an expression, not a plain column
SELECT err($$SELECT pg_tviews_create('tv_user', 'SELECT u.pk_user + 0 AS pk_user, u.name FROM tb_user u')$$);
SELECT err($$SELECT pg_tviews_create('tv_user', 'SELECT 1 AS pk_user')$$);
-- twice in the select list
SELECT err($$SELECT pg_tviews_create('tv_user', 'SELECT u.pk_user, u.name, u.pk_user FROM tb_user u')$$);
-- not unique in the result
SELECT err($$SELECT pg_tviews_create('tv_author', 'SELECT p.fk_user AS pk_author, p.title FROM tb_post p')$$);
-- NULL in some rows (the nullable side of an outer join)
SELECT err($$SELECT pg_tviews_create('tv_post', 'SELECT p.pk_post, u.pk_user FROM tb_user u LEFT JOIN tb_post p ON p.fk_user = u.pk_user')$$);
-- cannot be derived: no pk_* column, or several and the name does not say
SELECT err($$SELECT pg_tviews_create('tv_bad', 'SELECT u.name FROM tb_user u')$$);
SELECT err($$SELECT pg_tviews_create('user_posts', 'SELECT p.pk_post, u.pk_user FROM tb_post p JOIN tb_user u ON u.pk_user = p.fk_user')$$);
SELECT err($$SELECT pg_tviews_create('user_names', 'SELECT u.name FROM tb_user u')$$);
-- (with a single pk_* column, any name works; with the name, the key is
-- pk_<entity> even when other pk_* columns are selected)
SELECT pg_tviews_create('user_names', 'SELECT u.pk_user, u.name FROM tb_user u');
SELECT pg_tviews_create('tv_post', 'SELECT p.pk_post, u.pk_user FROM tb_post p JOIN tb_user u ON u.pk_user = p.fk_user');
SELECT tview, key_column FROM tviews.tview ORDER BY tview::text;
SELECT pg_tviews_drop('user_names');

--
-- The name
--
-- already exists (a table, a view, a TVIEW)
SELECT err($$SELECT pg_tviews_create('tb_user', 'SELECT u.pk_user FROM tb_user u')$$);
SELECT err($$SELECT pg_tviews_create('tv_post', 'SELECT p.pk_post FROM tb_post p')$$);
CREATE VIEW tv_user AS SELECT u.pk_user FROM tb_user u;
SELECT err($$SELECT pg_tviews_create('tv_user', 'SELECT u.pk_user FROM tb_user u')$$);
DROP VIEW tv_user;
-- the backing view's name is taken
CREATE VIEW tv_user_def AS SELECT 1 AS x;
SELECT err($$SELECT pg_tviews_create('tv_user', 'SELECT u.pk_user FROM tb_user u')$$);
SELECT to_regclass('tv_user') IS NULL AS not_created;
DROP VIEW tv_user_def;
-- not a valid name
SELECT err($$SELECT pg_tviews_create('a.b.c', 'SELECT u.pk_user FROM tb_user u')$$);
SELECT err($$SELECT pg_tviews_create('tv_user"', 'SELECT u.pk_user FROM tb_user u')$$);
-- a schema that does not exist
SELECT err($$SELECT pg_tviews_create('nosuchschema.tv_user', 'SELECT u.pk_user FROM tb_user u')$$);

--
-- Isolation: TVIEWs are created at READ COMMITTED only
--
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT err($$SELECT pg_tviews_create('tv_user', 'SELECT u.pk_user FROM tb_user u')$$);
ROLLBACK;
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT err($$SELECT pg_tviews_convert_existing_table('tb_user', 'SELECT u.pk_user, u.name, u.email FROM tb_user u', 'pk_user')$$);
ROLLBACK;
-- the same error without the helper, as a client sees it
BEGIN ISOLATION LEVEL REPEATABLE READ;
\set SHOW_CONTEXT never
SELECT pg_tviews_create('tv_user', 'SELECT u.pk_user FROM tb_user u');
\set SHOW_CONTEXT errors
ROLLBACK;

--
-- Dropping and refreshing what is not a TVIEW
--
SELECT err($$SELECT pg_tviews_drop('tb_user')$$);
SELECT err($$SELECT pg_tviews_drop('no_such_table')$$);
SELECT err($$SELECT pg_tviews_drop('tv_post_def')$$);
SELECT err($$SELECT pg_tviews_refresh('tb_user')$$);
SELECT err($$SELECT pg_tviews_refresh('no_such_table')$$);
SELECT err($$SELECT pg_tviews_refresh_row('tb_user', '1')$$);
SELECT err($$SELECT pg_tviews_refresh_range('tb_user', '1', '2')$$);
-- a key that is not of the key's type
SELECT err($$SELECT pg_tviews_refresh_row('tv_post', 'ten')$$);
SELECT err($$SELECT pg_tviews_refresh_range('tv_post', '1', 'x')$$);

-- a TVIEW another TVIEW is built on
SELECT pg_tviews_create('tv_post_titles', 'SELECT t.pk_post, p.title FROM tv_post t JOIN tb_post p ON p.pk_post = t.pk_post');
SELECT err($$SELECT pg_tviews_drop('tv_post')$$);
SELECT tview FROM tviews.tview ORDER BY tview::text;

--
-- pg_tviews_convert_existing_table
--
-- no such table (or not a table)
SELECT err($$SELECT pg_tviews_convert_existing_table('tv_nothing')$$);
SELECT err($$SELECT pg_tviews_convert_existing_table('tv_post_def')$$);
-- already a TVIEW
SELECT err($$SELECT pg_tviews_convert_existing_table('tv_post')$$);
-- no definition: no query, and no view <table>_def
CREATE TABLE tv_user (pk_user int, name text);
SELECT err($$SELECT pg_tviews_convert_existing_table('tv_user')$$);
-- a query given while <table>_def exists
CREATE VIEW tv_user_def AS SELECT u.pk_user, u.name FROM tb_user u;
SELECT err($$SELECT pg_tviews_convert_existing_table('tv_user', 'SELECT u.pk_user, u.name FROM tb_user u')$$);
DROP VIEW tv_user_def;
-- columns differ: a missing column, another type, another order
SELECT err($$SELECT pg_tviews_convert_existing_table('tv_user', 'SELECT u.pk_user, u.name, u.email FROM tb_user u')$$);
SELECT err($$SELECT pg_tviews_convert_existing_table('tv_user', 'SELECT u.pk_user, u.name::varchar(10) AS name FROM tb_user u')$$);
SELECT err($$SELECT pg_tviews_convert_existing_table('tv_user', 'SELECT u.name, u.pk_user FROM tb_user u')$$);
-- a definition error, as for pg_tviews_create()
SELECT err($$SELECT pg_tviews_convert_existing_table('tv_user', 'SELECT u.pk_user, u.name FROM tb_user u LIMIT 1')$$);
-- none of these left anything behind
SELECT to_regclass('tv_user_def') IS NULL AS no_view,
       (SELECT count(*) FROM tviews.tview WHERE tview = 'tv_user'::regclass) AS tviews;
-- and the right definition converts it
INSERT INTO tv_user VALUES (99, 'stale');
SELECT pg_tviews_convert_existing_table('tv_user', 'SELECT u.pk_user, u.name FROM tb_user u');
SELECT * FROM tv_user ORDER BY pk_user;

-- nothing of the failed calls is in the catalog
SELECT tview, key_column FROM tviews.tview ORDER BY tview::text;
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relname LIKE 'tv\_%' ORDER BY 1;

SELECT pg_tviews_drop('tv_post_titles');
SELECT pg_tviews_drop('tv_post');
SELECT pg_tviews_drop('tv_user');

--
-- Sources whose changes never reach the WAL, and cycles, are refused.
-- (The exact messages are not fixed here: only that the call fails and
-- registers nothing.  Whatever got registered is removed silently, so
-- that a failure here does not stop the engine for the files after.)
--
SET client_min_messages = warning;
-- an unlogged base table: its changes are never decoded
CREATE UNLOGGED TABLE tb_unlogged (pk_unlogged int PRIMARY KEY, v text);
SELECT count(*) FILTER (WHERE e = 'no error') = 0 AS refused
FROM err($$SELECT pg_tviews_create('tv_unlogged', 'SELECT pk_unlogged, v FROM tb_unlogged')$$) e;
-- a temporary base table
CREATE TEMP TABLE tb_temp (pk_temp int PRIMARY KEY);
SELECT count(*) FILTER (WHERE e = 'no error') = 0 AS refused
FROM err($$SELECT pg_tviews_create('tv_temp', 'SELECT pk_temp FROM tb_temp')$$) e;
-- a table converted with a definition that reads the table itself
CREATE TABLE tv_self (pk_self int);
SELECT count(*) FILTER (WHERE e = 'no error') = 0 AS refused
FROM err($$SELECT pg_tviews_convert_existing_table('tv_self', 'SELECT s.pk_self FROM tv_self s')$$) e;
SELECT count(*) AS registered FROM tviews.tview
WHERE tview::text IN ('tv_unlogged', 'tv_temp', 'tv_self');
DO $$
BEGIN
    DELETE FROM tviews.tview WHERE tview::text IN ('tv_unlogged', 'tv_temp', 'tv_self');
    PERFORM tviews.sync_tracked();
END
$$;
DROP VIEW IF EXISTS tv_unlogged_def, tv_temp_def, tv_self_def;
DROP TABLE IF EXISTS tb_unlogged, tb_temp, tv_self, tv_unlogged, tv_temp CASCADE;
RESET client_min_messages;

DROP TABLE tb_post, tb_user;
DROP FUNCTION err(text);
SELECT count(*) FROM tviews.tview;
