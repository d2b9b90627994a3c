-- The trigger configuration of write_cost.sh: the same three read tables
-- (tv_user, tv_post, tv_comment, defined in bench_tview_def), maintained
-- immediately, in the writer's transaction, by per-key recompute triggers
-- as trigger-based tools do.  Needs fraiseql_setup.sql first, and a
-- database WITHOUT the pg_tviews extension.
--
-- Per base table, an AFTER INSERT OR UPDATE OR DELETE FOR EACH ROW trigger
-- finds the read-table keys the changed row affects (old and new values),
-- then recomputes them from the definition view <tv>_def filtered by key,
-- with the statement the pg_tviews engine itself uses (upsert of the
-- changed rows, delete of the vanished ones, unchanged rows not written):
--
--   tb_user     tv_user (its key); tv_post and tv_comment rows of that user
--               (the author object), found by fk_user
--   tb_post     tv_post (its key)
--   tb_comment  tv_post (its fk_post: the comments array); tv_comment
--
-- Correctness under concurrent writers.  A recompute reads the base tables
-- with its own snapshot, so two transactions recomputing the same key, or
-- a user rename racing with a new comment of that user, can leave a stale
-- row (a recompute from an older snapshot committed last).  Each key is
-- therefore locked (pg_advisory_xact_lock, held until commit) before it
-- is recomputed, and the recompute runs in a later statement, i.e. with a
-- snapshot taken after the lock (READ COMMITTED): the last transaction to
-- recompute a key sees every earlier one.  A transaction that makes a post
-- or a comment point at a user also locks that user's key first, so that
-- either the rename sees the new row or the new row sees the rename.
-- Locks are taken in one global order (user keys, then post keys, then
-- comment keys, each ascending), so they cannot deadlock.  Without these
-- locks the oracle check fails under 4 clients (BENCH_TRIGGER_LOCKS=0 of
-- write_cost.sh: with 100 users and 500 posts, 13 wrong rows after 10 s).

DO $$
DECLARE
    d record;
BEGIN
    FOR d IN SELECT * FROM bench_tview_def ORDER BY ord LOOP
        EXECUTE format('CREATE VIEW %I AS %s', d.name || '_def', d.query);
        EXECUTE format('CREATE TABLE %I AS SELECT * FROM %I', d.name, d.name || '_def');
        EXECUTE format('ALTER TABLE %I ALTER COLUMN %I SET NOT NULL', d.name, d.key);
        -- the indexes pg_tviews_create() makes: the key, the parent columns
        EXECUTE format('CREATE UNIQUE INDEX ON %I (%I)', d.name, d.key);
    END LOOP;
END
$$;
CREATE INDEX ON tv_post (fk_user);
CREATE INDEX ON tv_comment (fk_user);
ANALYZE tv_user, tv_post, tv_comment;

-- lock classes of pg_advisory_xact_lock(class, key)
--   1: a user (tv_user key, and parent of tv_post/tv_comment rows)
--   2: a tv_post key      3: a tv_comment key

CREATE FUNCTION bench_lock_keys(class integer, keys integer[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    -- in key order (a subquery with ORDER BY is not flattened)
    PERFORM pg_advisory_xact_lock(class, k)
    FROM (SELECT DISTINCT k FROM unnest(keys) k WHERE k IS NOT NULL ORDER BY k) s;
END
$$;

CREATE FUNCTION bench_refresh_tv_user(keys integer[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    PERFORM bench_lock_keys(1, keys);
    WITH src AS MATERIALIZED (SELECT * FROM tv_user_def v WHERE v.pk_user = ANY (keys)),
    del AS (DELETE FROM tv_user d WHERE d.pk_user = ANY (keys)
            AND NOT EXISTS (SELECT FROM src WHERE src.pk_user = d.pk_user) RETURNING 1),
    ups AS (INSERT INTO tv_user AS d SELECT * FROM src
            ON CONFLICT (pk_user) DO UPDATE SET data = EXCLUDED.data
            WHERE d.data IS DISTINCT FROM EXCLUDED.data RETURNING 1)
    SELECT (SELECT count(*) FROM del) + (SELECT count(*) FROM ups) INTO n;
END
$$;

CREATE FUNCTION bench_refresh_tv_post(keys integer[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    PERFORM bench_lock_keys(2, keys);
    WITH src AS MATERIALIZED (SELECT * FROM tv_post_def v WHERE v.pk_post = ANY (keys)),
    del AS (DELETE FROM tv_post d WHERE d.pk_post = ANY (keys)
            AND NOT EXISTS (SELECT FROM src WHERE src.pk_post = d.pk_post) RETURNING 1),
    ups AS (INSERT INTO tv_post AS d SELECT * FROM src
            ON CONFLICT (pk_post) DO UPDATE SET fk_user = EXCLUDED.fk_user, data = EXCLUDED.data
            WHERE d.fk_user IS DISTINCT FROM EXCLUDED.fk_user
               OR d.data IS DISTINCT FROM EXCLUDED.data RETURNING 1)
    SELECT (SELECT count(*) FROM del) + (SELECT count(*) FROM ups) INTO n;
END
$$;

CREATE FUNCTION bench_refresh_tv_comment(keys integer[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    PERFORM bench_lock_keys(3, keys);
    WITH src AS MATERIALIZED (SELECT * FROM tv_comment_def v WHERE v.pk_comment = ANY (keys)),
    del AS (DELETE FROM tv_comment d WHERE d.pk_comment = ANY (keys)
            AND NOT EXISTS (SELECT FROM src WHERE src.pk_comment = d.pk_comment) RETURNING 1),
    ups AS (INSERT INTO tv_comment AS d SELECT * FROM src
            ON CONFLICT (pk_comment) DO UPDATE
            SET fk_post = EXCLUDED.fk_post, fk_user = EXCLUDED.fk_user, data = EXCLUDED.data
            WHERE d.fk_post IS DISTINCT FROM EXCLUDED.fk_post
               OR d.fk_user IS DISTINCT FROM EXCLUDED.fk_user
               OR d.data IS DISTINCT FROM EXCLUDED.data RETURNING 1)
    SELECT (SELECT count(*) FROM del) + (SELECT count(*) FROM ups) INTO n;
END
$$;

CREATE FUNCTION bench_tb_user_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    users integer[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        users := ARRAY[NEW.pk_user];
    ELSIF TG_OP = 'DELETE' THEN
        users := ARRAY[OLD.pk_user];
    ELSE
        users := ARRAY[OLD.pk_user, NEW.pk_user];
    END IF;
    PERFORM bench_refresh_tv_user(users);		-- also locks the users
    IF TG_OP <> 'INSERT' THEN
        -- the rows that embed this user, found after the lock
        PERFORM bench_refresh_tv_post(ARRAY(SELECT pk_post FROM tb_post WHERE fk_user = ANY (users)));
        PERFORM bench_refresh_tv_comment(ARRAY(SELECT pk_comment FROM tb_comment WHERE fk_user = ANY (users)));
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION bench_tb_post_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM bench_lock_keys(1, ARRAY[NEW.fk_user]);
        PERFORM bench_refresh_tv_post(ARRAY[NEW.pk_post]);
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM bench_refresh_tv_post(ARRAY[OLD.pk_post]);
    ELSE
        IF NEW.fk_user IS DISTINCT FROM OLD.fk_user THEN
            PERFORM bench_lock_keys(1, ARRAY[NEW.fk_user]);
        END IF;
        PERFORM bench_refresh_tv_post(ARRAY[OLD.pk_post, NEW.pk_post]);
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION bench_tb_comment_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM bench_lock_keys(1, ARRAY[NEW.fk_user]);
        PERFORM bench_refresh_tv_post(ARRAY[NEW.fk_post]);
        PERFORM bench_refresh_tv_comment(ARRAY[NEW.pk_comment]);
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM bench_refresh_tv_post(ARRAY[OLD.fk_post]);
        PERFORM bench_refresh_tv_comment(ARRAY[OLD.pk_comment]);
    ELSE
        IF NEW.fk_user IS DISTINCT FROM OLD.fk_user THEN
            PERFORM bench_lock_keys(1, ARRAY[NEW.fk_user]);
        END IF;
        PERFORM bench_refresh_tv_post(ARRAY[OLD.fk_post, NEW.fk_post]);
        PERFORM bench_refresh_tv_comment(ARRAY[OLD.pk_comment, NEW.pk_comment]);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER bench_maintain AFTER INSERT OR UPDATE OR DELETE ON tb_user
    FOR EACH ROW EXECUTE FUNCTION bench_tb_user_trg();
CREATE TRIGGER bench_maintain AFTER INSERT OR UPDATE OR DELETE ON tb_post
    FOR EACH ROW EXECUTE FUNCTION bench_tb_post_trg();
CREATE TRIGGER bench_maintain AFTER INSERT OR UPDATE OR DELETE ON tb_comment
    FOR EACH ROW EXECUTE FUNCTION bench_tb_comment_trg();
