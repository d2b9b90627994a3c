--
-- pg_tviews_analyze(): dependencies and lineage rules of TVIEW definitions.
-- One row per occurrence of a base relation: root (it provides the key),
-- child (a column equal to the key), parent (a column equal to a column
-- the TVIEW exposes), full (nothing derivable).
--
CREATE TABLE tb_user (pk_user int PRIMARY KEY, name text, email text);
CREATE TABLE tb_post (pk_post int PRIMARY KEY, fk_user int, title text, published boolean);
CREATE TABLE tb_comment (pk_comment int PRIMARY KEY, fk_post int, fk_user int, body text);
CREATE TABLE tb_like (pk_like int PRIMARY KEY, fk_comment int, fk_user int);

-- the rules of a definition, in a stable order
CREATE FUNCTION lineage(query text, key name)
RETURNS TABLE (source regclass, rule text, source_column name, tview_column name, location text)
LANGUAGE sql AS $$
    SELECT a.source, a.rule, a.source_column, a.tview_column, a.location
    FROM pg_tviews_analyze(query, key) a
    ORDER BY a.location, a.source::text, a.rule, a.source_column
$$;

-- the root table only
SELECT * FROM lineage($$SELECT u.pk_user, u.name FROM tb_user u$$, 'pk_user');

-- a join whose foreign key the TVIEW exposes: tb_user is a parent
SELECT * FROM lineage($$
    SELECT p.pk_post, p.fk_user, jsonb_build_object('title', p.title, 'author', u.name) AS data
    FROM tb_post p JOIN tb_user u ON u.pk_user = p.fk_user$$, 'pk_post');
-- ... also under another name
SELECT * FROM lineage($$
    SELECT p.pk_post, p.fk_user AS author_id, u.name
    FROM tb_post p, tb_user u WHERE p.fk_user = u.pk_user$$, 'pk_post');
-- ... and exposed through the parent's own column
SELECT * FROM lineage($$
    SELECT p.pk_post, u.pk_user, u.name
    FROM tb_post p JOIN tb_user u ON u.pk_user = p.fk_user$$, 'pk_post');

-- the same join without the foreign key exposed: nothing maps a user to
-- posts, so every change to tb_user refreshes the whole TVIEW
SELECT * FROM lineage($$
    SELECT p.pk_post, p.title, u.name
    FROM tb_post p JOIN tb_user u ON u.pk_user = p.fk_user$$, 'pk_post');

-- a child through WHERE (an aggregate per post)
SELECT * FROM lineage($$
    SELECT p.pk_post, count(*) AS comments
    FROM tb_post p, tb_comment c WHERE c.fk_post = p.pk_post AND c.body <> ''
    GROUP BY p.pk_post$$, 'pk_post');

-- a child through a correlated subquery in the select list (a nested
-- jsonb_agg of the read model)
SELECT * FROM lineage($$
    SELECT p.pk_post,
           (SELECT jsonb_agg(jsonb_build_object('id', c.pk_comment, 'body', c.body))
            FROM tb_comment c WHERE c.fk_post = p.pk_post) AS comments
    FROM tb_post p$$, 'pk_post');

-- a child through EXISTS, and through a LATERAL subquery
SELECT * FROM lineage($$
    SELECT p.pk_post, p.title FROM tb_post p
    WHERE EXISTS (SELECT FROM tb_comment c WHERE c.fk_post = p.pk_post)$$, 'pk_post');
SELECT * FROM lineage($$
    SELECT p.pk_post, x.n FROM tb_post p,
           LATERAL (SELECT count(*) AS n FROM tb_comment c WHERE c.fk_post = p.pk_post) x$$, 'pk_post');

-- two levels of sublinks: the comments are children, their likes (linked
-- to a comment, not to the post) are not: full
SELECT * FROM lineage($$
    SELECT p.pk_post,
           (SELECT jsonb_agg(jsonb_build_object(
                       'id', c.pk_comment,
                       'likes', (SELECT count(*) FROM tb_like l WHERE l.fk_comment = c.pk_comment)))
            FROM tb_comment c WHERE c.fk_post = p.pk_post) AS comments
    FROM tb_post p$$, 'pk_post');

-- a chain of equalities reaches the key: l.fk_comment = c.fk_post = p.pk_post
SELECT * FROM lineage($$
    SELECT p.pk_post, count(l.pk_like) AS n
    FROM tb_post p JOIN tb_comment c ON c.fk_post = p.pk_post
                   JOIN tb_like l ON l.fk_comment = c.fk_post
    GROUP BY p.pk_post$$, 'pk_post');

-- a LEFT JOIN child (users without posts keep their row)
SELECT * FROM lineage($$
    SELECT u.pk_user, count(p.pk_post) AS posts
    FROM tb_user u LEFT JOIN tb_post p ON p.fk_user = u.pk_user
    GROUP BY u.pk_user$$, 'pk_user');

-- an aggregate keyed by a foreign key: tb_post is the root through fk_user
SELECT * FROM lineage($$
    SELECT p.fk_user AS pk_user, count(*) AS posts FROM tb_post p GROUP BY p.fk_user$$, 'pk_user');

-- a CTE with GROUP BY: the CTE's column leads back to tb_comment.fk_post
SELECT * FROM lineage($$
    WITH counts AS (SELECT c.fk_post, count(*) AS n FROM tb_comment c GROUP BY c.fk_post)
    SELECT p.pk_post, coalesce(k.n, 0) AS comments
    FROM tb_post p LEFT JOIN counts k ON k.fk_post = p.pk_post$$, 'pk_post');

-- a subquery in FROM, and the key itself taken through one
SELECT * FROM lineage($$
    SELECT p.pk_post, coalesce(k.n, 0) AS comments
    FROM tb_post p
    LEFT JOIN (SELECT c.fk_post, count(*) AS n FROM tb_comment c GROUP BY c.fk_post) k
           ON k.fk_post = p.pk_post$$, 'pk_post');
SELECT * FROM lineage($$
    SELECT s.pk_post, s.title FROM (SELECT p.pk_post, p.title FROM tb_post p) s$$, 'pk_post');

-- a view over base tables: lineage follows through the view to its tables
CREATE VIEW v_post_author AS
    SELECT p.pk_post, p.fk_user, p.title, u.name AS author
    FROM tb_post p JOIN tb_user u ON u.pk_user = p.fk_user;
SELECT * FROM lineage($$
    SELECT v.pk_post, v.fk_user, v.title, v.author FROM v_post_author v$$, 'pk_post');
-- (a view joined to a child)
SELECT * FROM lineage($$
    SELECT v.pk_post, v.author, count(c.pk_comment) AS comments
    FROM v_post_author v LEFT JOIN tb_comment c ON c.fk_post = v.pk_post
    GROUP BY v.pk_post, v.author$$, 'pk_post');

-- a FULL JOIN: its condition gives no equality
SELECT * FROM lineage($$
    SELECT p.pk_post, c.body
    FROM tb_post p FULL JOIN tb_comment c ON c.fk_post = p.pk_post
    WHERE p.pk_post IS NOT NULL$$, 'pk_post');

-- under OR (or NOT) an equality is not used
SELECT * FROM lineage($$
    SELECT p.pk_post, count(c.pk_comment) AS n
    FROM tb_post p, tb_comment c
    WHERE c.fk_post = p.pk_post OR c.fk_user = p.fk_user
    GROUP BY p.pk_post$$, 'pk_post');
SELECT * FROM lineage($$
    SELECT p.pk_post, count(c.pk_comment) AS n
    FROM tb_post p, tb_comment c
    WHERE NOT (c.fk_post <> p.pk_post)
    GROUP BY p.pk_post$$, 'pk_post');

-- an equality with a constant or through an expression is not a link
SELECT * FROM lineage($$
    SELECT p.pk_post, count(c.pk_comment) AS n
    FROM tb_post p, tb_comment c
    WHERE c.fk_post + 0 = p.pk_post
    GROUP BY p.pk_post$$, 'pk_post');

-- an outer join's condition constrains only its nullable side: here
-- c.fk_post = p.pk_post does not restrict the comments counted for a post
-- (every post counts every comment), so tb_comment must be "full"
SELECT * FROM lineage($$
    SELECT p.pk_post, count(c.pk_comment) AS n
    FROM tb_post p CROSS JOIN tb_comment c
    LEFT JOIN tb_user u ON u.pk_user = c.fk_user AND c.fk_post = p.pk_post
    GROUP BY p.pk_post$$, 'pk_post');

-- the same table twice: one row per occurrence.  The commenter is a
-- parent through the exposed c.fk_user; the post author is linked to the
-- post, whose fk_user the TVIEW does not select: full
SELECT * FROM lineage($$
    SELECT c.pk_comment, c.fk_user, c.fk_post, cu.name AS commenter, pu.name AS post_author
    FROM tb_comment c
    JOIN tb_user cu ON cu.pk_user = c.fk_user
    JOIN tb_post p ON p.pk_post = c.fk_post
    JOIN tb_user pu ON pu.pk_user = p.fk_user$$, 'pk_comment');

-- a column the TVIEW selects from a relation is no link by itself: the
-- rows that depend on a user are found through an equality, not through
-- the user's own (possibly NULL, possibly shared) email
SELECT * FROM lineage($$
    SELECT p.pk_post, p.title, u.email
    FROM tb_post p JOIN tb_user u ON u.pk_user = p.fk_user$$, 'pk_post');

-- a materialized view carries no decodable changes: full
CREATE MATERIALIZED VIEW mv_user AS SELECT pk_user, name FROM tb_user;
SELECT * FROM lineage($$
    SELECT p.pk_post, p.fk_user, m.name
    FROM tb_post p JOIN mv_user m ON m.pk_user = p.fk_user$$, 'pk_post');

-- relations that are not tables (functions, VALUES) have no row
SELECT * FROM lineage($$
    SELECT p.pk_post, g.i FROM tb_post p, generate_series(1, 1) g(i),
           (VALUES (1)) v(x) WHERE v.x = g.i$$, 'pk_post');

--
-- columns_used: the columns of each occurrence the definition reads
--
SELECT source, rule, columns_used FROM pg_tviews_analyze($$
    SELECT p.pk_post, p.fk_user, u.name
    FROM tb_post p, tb_user u WHERE u.pk_user = p.fk_user$$, 'pk_post')
ORDER BY source::text;
SELECT source, rule, columns_used, location FROM pg_tviews_analyze($$
    SELECT p.pk_post,
           (SELECT jsonb_agg(c.body) FROM tb_comment c WHERE c.fk_post = p.pk_post) AS bodies
    FROM tb_post p$$, 'pk_post')
ORDER BY source::text;
-- (through a view: what the view reads)
SELECT source, rule, columns_used, location FROM pg_tviews_analyze($$
    SELECT v.pk_post, v.title FROM v_post_author v$$, 'pk_post')
ORDER BY source::text;
-- an explicit JOIN reads the columns its condition and select list name,
-- not every column of both tables
SELECT source, rule, columns_used FROM pg_tviews_analyze($$
    SELECT p.pk_post, p.fk_user, u.name
    FROM tb_post p JOIN tb_user u ON u.pk_user = p.fk_user$$, 'pk_post')
ORDER BY source::text;

-- analysis errors are the definition errors of pg_tviews_create()
\set VERBOSITY terse
SELECT * FROM pg_tviews_analyze('SELECT pk_user FROM tb_user LIMIT 1', 'pk_user');
SELECT * FROM pg_tviews_analyze('SELECT name FROM tb_user', 'pk_user');
SELECT * FROM pg_tviews_analyze('SELECT lower(name) AS pk_user FROM tb_user', 'pk_user');
-- what gives another result in every transaction, and what is never
-- decoded as row changes
CREATE SEQUENCE sq_lineage;
SELECT * FROM pg_tviews_analyze('SELECT pk_user, now() AS t FROM tb_user', 'pk_user');
SELECT * FROM pg_tviews_analyze('SELECT pk_user, CURRENT_DATE AS d FROM tb_user', 'pk_user');
SELECT * FROM pg_tviews_analyze('SELECT pk_user FROM tb_user TABLESAMPLE SYSTEM (50)', 'pk_user');
SELECT * FROM pg_tviews_analyze('SELECT pk_user, (SELECT last_value FROM sq_lineage) AS s FROM tb_user', 'pk_user');
SELECT * FROM pg_tviews_analyze('SELECT pk_user, (SELECT count(*) FROM pg_class) AS n FROM tb_user', 'pk_user');
SELECT * FROM pg_tviews_analyze('SELECT tview::oid::int AS pk, state FROM tviews.tview', 'pk');
DROP SEQUENCE sq_lineage;
\set VERBOSITY default

-- analysing creates nothing and takes no lock that outlives the statement
SELECT count(*) FROM pg_locks
WHERE locktype = 'relation' AND relation = 'tb_post'::regclass AND pid = pg_backend_pid();
SELECT count(*) FROM tviews.source;

DROP MATERIALIZED VIEW mv_user;
DROP VIEW v_post_author;
DROP FUNCTION lineage(text, name);
DROP TABLE tb_like, tb_comment, tb_post, tb_user;
