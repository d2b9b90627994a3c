--
-- pg_tviews_create() on a FraiseQL-style schema: TVIEWs of several shapes,
-- their catalog rows and lineage, and their content after writes.  Then
-- the CREATE TABLE tv_x AS SELECT ... convention.
--
\set SHOW_CONTEXT never
CREATE TABLE tb_user (
    pk_user int PRIMARY KEY,
    name text NOT NULL,
    email text
);
CREATE TABLE tb_post (
    pk_post int PRIMARY KEY,
    fk_user int NOT NULL REFERENCES tb_user,
    title text NOT NULL,
    published boolean NOT NULL DEFAULT false
);
CREATE TABLE tb_comment (
    pk_comment int PRIMARY KEY,
    fk_post int NOT NULL REFERENCES tb_post ON DELETE CASCADE,
    fk_user int NOT NULL REFERENCES tb_user,
    body text NOT NULL
);
INSERT INTO tb_user VALUES
    (1, 'alice', 'alice@example.com'),
    (2, 'bob', NULL),
    (3, 'carol', 'carol@example.com');
INSERT INTO tb_post VALUES
    (10, 1, 'Hello', true),
    (11, 1, 'Second', false),
    (12, 2, 'Bob''s post', true);
INSERT INTO tb_comment VALUES
    (100, 10, 2, 'nice'),
    (101, 10, 3, 'agreed'),
    (102, 12, 1, 'welcome');

-- a join with nested jsonb_build_object: tb_post is the root, tb_user a
-- parent through the exposed fk_user
SELECT pg_tviews_create('tv_post', $$
    SELECT p.pk_post, p.fk_user,
           jsonb_build_object('id', p.pk_post, 'title', p.title,
                              'author', jsonb_build_object('id', u.pk_user, 'name', u.name)) AS data
    FROM tb_post p JOIN tb_user u ON u.pk_user = p.fk_user
$$);

-- a correlated jsonb_agg of children: tb_comment is a child through
-- fk_post (its old values must reach the WAL: replica identity becomes
-- FULL); the comment authors are joined inside the subquery with no link
-- to the key, so tb_user falls back to full refreshes, with a NOTICE
SELECT pg_tviews_create('tv_thread', $$
    SELECT p.pk_post, p.title,
           (SELECT coalesce(jsonb_agg(jsonb_build_object('id', c.pk_comment, 'body', c.body,
                                                         'by', cu.name)
                                      ORDER BY c.pk_comment), '[]')
            FROM tb_comment c JOIN tb_user cu ON cu.pk_user = c.fk_user
            WHERE c.fk_post = p.pk_post) AS comments
    FROM tb_post p
$$);
SELECT relname, relreplident FROM pg_class
WHERE relname IN ('tb_user', 'tb_post', 'tb_comment') ORDER BY relname;

-- an aggregate: one row per user, tb_post is a child through fk_user
SELECT pg_tviews_create('tv_user_stats', $$
    SELECT u.pk_user, count(p.pk_post) AS posts,
           count(p.pk_post) FILTER (WHERE p.published) AS published
    FROM tb_user u LEFT JOIN tb_post p ON p.fk_user = u.pk_user
    GROUP BY u.pk_user
$$);

-- schema-qualified, in a new schema
CREATE SCHEMA app;
SELECT pg_tviews_create('app.tv_user', $$
    SELECT u.pk_user, jsonb_build_object('name', u.name, 'email', u.email) AS data
    FROM public.tb_user u
$$);

-- an odd name (quoted as an identifier) with an explicit key
SELECT pg_tviews_create('"tv_Odd ""Name"" ü"', $$
    SELECT c.pk_comment, c.fk_post, c.body FROM tb_comment c
$$, key => 'pk_comment');

-- a TVIEW built on TVIEWs: tv_post is its root, tv_user_stats a parent
-- through the exposed fk_user
SELECT pg_tviews_create('tv_feed', $$
    SELECT tp.pk_post, tp.fk_user, tp.data->>'title' AS title, s.posts AS author_posts
    FROM tv_post tp JOIN tv_user_stats s ON s.pk_user = tp.fk_user
$$);

-- the catalog
SELECT tview, backing_view, key_column, key_type, state, full_refreshes
FROM tviews.tview ORDER BY tview::text COLLATE "C";
SELECT tview, source, rule, source_column, tview_column, location, source_is_tview
FROM tviews.source
ORDER BY tview::text COLLATE "C", source::text COLLATE "C", location COLLATE "C", rule COLLATE "C";
SELECT relid, lineage_columns FROM tviews.tracked ORDER BY relid::text COLLATE "C";
-- the TVIEW tables have a unique index on the key, and parent rules an
-- index on the column they match
SELECT indrelid::regclass AS tview, pg_get_indexdef(indexrelid) ~ 'UNIQUE' AS is_unique,
       (SELECT string_agg(attname, ',') FROM pg_attribute
        WHERE attrelid = indrelid AND attnum = ANY (indkey)) AS columns
FROM pg_index
WHERE indrelid IN (SELECT tview FROM tviews.tview)
ORDER BY indrelid::regclass::text COLLATE "C", columns;

-- initial content
SELECT * FROM tv_post ORDER BY pk_post;
SELECT * FROM tv_thread ORDER BY pk_post;
SELECT * FROM tv_user_stats ORDER BY pk_user;
SELECT * FROM app.tv_user ORDER BY pk_user;
SELECT * FROM "tv_Odd ""Name"" ü" ORDER BY pk_comment;
SELECT * FROM tv_feed ORDER BY pk_post;

-- writes to every base table
INSERT INTO tb_user VALUES (4, 'dave', NULL);
UPDATE tb_user SET name = 'Alice' WHERE pk_user = 1;
UPDATE tb_user SET email = 'bob@example.com' WHERE pk_user = 2;
INSERT INTO tb_post VALUES (13, 4, 'Dave here', true);
UPDATE tb_post SET published = true WHERE pk_post = 11;
UPDATE tb_post SET fk_user = 3 WHERE pk_post = 12;
INSERT INTO tb_comment VALUES (103, 13, 1, 'hi dave'), (104, 11, 4, 'first');
UPDATE tb_comment SET fk_post = 13 WHERE pk_comment = 101;
DELETE FROM tb_comment WHERE pk_comment = 102;
BEGIN;
UPDATE tb_post SET title = 'Hello, world' WHERE pk_post = 10;
DELETE FROM tb_post WHERE pk_post = 12;
COMMIT;
SELECT pg_tviews_wait('30s');

SELECT 'tv_post' AS tview, * FROM tview_diff('tv_post')
UNION ALL SELECT 'tv_thread', * FROM tview_diff('tv_thread')
UNION ALL SELECT 'tv_user_stats', * FROM tview_diff('tv_user_stats')
UNION ALL SELECT 'app.tv_user', * FROM tview_diff('app.tv_user')
UNION ALL SELECT 'odd', * FROM tview_diff('"tv_Odd ""Name"" ü"')
UNION ALL SELECT 'tv_feed', * FROM tview_diff('tv_feed');

SELECT * FROM tv_post ORDER BY pk_post;
SELECT * FROM tv_thread ORDER BY pk_post;
SELECT * FROM tv_user_stats ORDER BY pk_user;
SELECT * FROM app.tv_user ORDER BY pk_user;
SELECT * FROM "tv_Odd ""Name"" ü" ORDER BY pk_comment;
SELECT * FROM tv_feed ORDER BY pk_post;

-- a rolled back write changes nothing
BEGIN;
UPDATE tb_user SET name = 'nobody';
ROLLBACK;
SELECT pg_tviews_wait('30s');
SELECT count(*) FROM tv_post WHERE data->'author'->>'name' = 'nobody';

-- deleting a user's posts and the user
DELETE FROM tb_comment WHERE fk_user = 4 OR fk_post IN (SELECT pk_post FROM tb_post WHERE fk_user = 4);
DELETE FROM tb_post WHERE fk_user = 4;
DELETE FROM tb_user WHERE pk_user = 4;
SELECT pg_tviews_wait('30s');
SELECT 'tv_post' AS tview, * FROM tview_diff('tv_post')
UNION ALL SELECT 'tv_thread', * FROM tview_diff('tv_thread')
UNION ALL SELECT 'tv_user_stats', * FROM tview_diff('tv_user_stats')
UNION ALL SELECT 'app.tv_user', * FROM tview_diff('app.tv_user')
UNION ALL SELECT 'odd', * FROM tview_diff('"tv_Odd ""Name"" ü"')
UNION ALL SELECT 'tv_feed', * FROM tview_diff('tv_feed');
SELECT pk_user FROM tv_user_stats ORDER BY 1;

--
-- Joined rows that come and go through the join itself
--
-- a parent row inserted after the row that references it (no foreign
-- key): the inner join now yields a TVIEW row
CREATE TABLE tb_author (pk_author int PRIMARY KEY, name text);
CREATE TABLE tb_book (pk_book int PRIMARY KEY, fk_author int, title text);
SELECT pg_tviews_create('tv_book', $$
    SELECT b.pk_book, b.fk_author, b.title, a.name
    FROM tb_book b JOIN tb_author a ON a.pk_author = b.fk_author
$$);
INSERT INTO tb_book VALUES (1, 9, 'orphan'), (2, 8, 'has author');
INSERT INTO tb_author VALUES (8, 'early');
SELECT pg_tviews_wait('30s');
SELECT * FROM tv_book ORDER BY pk_book;
INSERT INTO tb_author VALUES (9, 'late');
SELECT pg_tviews_wait('30s');
SELECT * FROM tv_book ORDER BY pk_book;
SELECT * FROM tview_diff('tv_book');

-- a selected column of a joined table, NULL before the update
CREATE TABLE tb_member (pk_member int PRIMARY KEY, email text);
CREATE TABLE tb_note (pk_note int PRIMARY KEY, fk_member int NOT NULL REFERENCES tb_member,
                      title text);
INSERT INTO tb_member VALUES (1, NULL), (2, 'two@example.com');
INSERT INTO tb_note VALUES (10, 1, 'a'), (20, 2, 'b');
SET client_min_messages = warning;
SELECT pg_tviews_create('tv_note', $$
    SELECT n.pk_note, n.title, m.email
    FROM tb_note n JOIN tb_member m ON m.pk_member = n.fk_member
$$);
RESET client_min_messages;
UPDATE tb_member SET email = 'one@example.com' WHERE pk_member = 1;
UPDATE tb_member SET email = NULL WHERE pk_member = 2;
SELECT pg_tviews_wait('30s');
SELECT * FROM tv_note ORDER BY pk_note;
SELECT * FROM tview_diff('tv_note');
DROP TABLE tv_book, tv_note;
DROP TABLE tb_book, tb_author, tb_note, tb_member;

--
-- CREATE TABLE tv_x AS SELECT ... creates a TVIEW (a top-level statement,
-- as a client sends it)
--
CREATE TABLE tv_comment AS
    SELECT c.pk_comment, c.fk_post, c.body FROM tb_comment c;
SELECT tview, backing_view, key_column FROM tviews.tview WHERE tview = 'tv_comment'::regclass;
SELECT source, rule, source_column FROM tviews.source
WHERE tview = 'tv_comment'::regclass ORDER BY source::text;
INSERT INTO tb_comment VALUES (105, 10, 2, 'via CTAS');
SELECT pg_tviews_wait('30s');
SELECT * FROM tv_comment ORDER BY pk_comment;
SELECT * FROM tview_diff('tv_comment');

-- schema-qualified, with a trailing WITH DATA
CREATE TABLE app.tv_post AS
    SELECT p.pk_post, p.title FROM public.tb_post p WITH DATA;
SELECT * FROM app.tv_post ORDER BY pk_post;

-- WITH NO DATA: still a TVIEW, populated (a TVIEW is never empty by choice)
CREATE TABLE tv_user_names AS SELECT u.pk_user, u.name FROM tb_user u WITH NO DATA;
SELECT key_column FROM tviews.tview WHERE tview = 'tv_user_names'::regclass;
SELECT * FROM tv_user_names ORDER BY pk_user;

-- IF NOT EXISTS on an existing relation is left to PostgreSQL
CREATE TABLE IF NOT EXISTS tv_user_names AS SELECT u.pk_user, u.name FROM tb_user u;

-- a column list, options or a tablespace are refused
CREATE TABLE tv_user_cols (id, name) AS SELECT u.pk_user, u.name FROM tb_user u;
CREATE TABLE tv_user_opts WITH (fillfactor = 70) AS SELECT u.pk_user, u.name FROM tb_user u;
SELECT to_regclass('tv_user_cols') IS NULL AS no_cols, to_regclass('tv_user_opts') IS NULL AS no_opts;

-- a temporary or unlogged table, another name, or SELECT INTO: plain tables
CREATE TEMP TABLE tv_temp AS SELECT u.pk_user, u.name FROM tb_user u;
CREATE UNLOGGED TABLE tv_unlogged AS SELECT u.pk_user, u.name FROM tb_user u;
CREATE TABLE user_copy AS SELECT u.pk_user, u.name FROM tb_user u;
SELECT u.pk_user, u.name INTO tv_selected FROM tb_user u;
SELECT c.relname, c.relpersistence,
       EXISTS (SELECT FROM tviews.tview t WHERE t.tview = c.oid) AS is_tview
FROM pg_class c
WHERE c.relname IN ('tv_temp', 'tv_unlogged', 'user_copy', 'tv_selected')
ORDER BY c.relname;

-- inside a function or DO block the statement is not top-level: a plain
-- table (the convention applies to statements sent by clients only)
DO $$
BEGIN
    CREATE TABLE tv_in_do AS SELECT u.pk_user, u.name FROM tb_user u;
END
$$;
SELECT EXISTS (SELECT FROM tviews.tview WHERE tview = 'tv_in_do'::regclass) AS is_tview,
       to_regclass('tv_in_do_def') IS NULL AS no_def_view;

-- a bad definition fails like pg_tviews_create() and leaves nothing behind
CREATE TABLE tv_bad AS SELECT u.name FROM tb_user u;
SELECT to_regclass('tv_bad') IS NULL AS no_table, to_regclass('tv_bad_def') IS NULL AS no_view;

DROP TABLE tv_temp, tv_unlogged, user_copy, tv_selected, tv_in_do;

-- clean up: TVIEWs first (tv_feed before what it is built on)
SELECT pg_tviews_drop('tv_feed');
DROP TABLE tv_post, tv_thread, tv_user_stats, "tv_Odd ""Name"" ü", tv_comment, tv_user_names;
SELECT pg_tviews_drop('app.tv_user'), pg_tviews_drop('app.tv_post');
DROP SCHEMA app;
SELECT count(*) AS tviews FROM tviews.tview;
SELECT count(*) AS sources FROM tviews.source;
SELECT count(*) AS tracked FROM tviews.tracked;
DROP TABLE tb_comment, tb_post, tb_user;
