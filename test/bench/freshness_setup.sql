-- Lag measurement of freshness.sh, on a database with fraiseql_setup.sql
-- loaded and the TVIEWs tv_user, tv_post, tv_comment created.  The server
-- needs track_commit_timestamp = on.
--
-- The base tables stay trigger-free.  Each TVIEW document carries
-- writtenAt, the newest written_at of the base rows it is built from,
-- which the writers set to clock_timestamp().  A measurement-only trigger
-- on each TVIEW table logs, whenever the engine writes a row whose
-- writtenAt is new (an INSERT, or an UPDATE changing writtenAt), that
-- writtenAt and the trigger's clock into bench_lag, in the engine's own
-- transaction: the xmin of the bench_lag row is the engine's (sub)transaction.
--
-- bench_collect_lag() then gives one lag per write (per writtenAt value):
--   writer commit  pg_xact_commit_timestamp(xmin) of the base row that
--                  still carries that written_at (every write sets it)
--   visible        the latest pg_xact_commit_timestamp(xmin) among the
--                  bench_lag rows of that write: the commit of the engine
--                  transaction that made the last of its rows visible
--   lag_ms         visible - writer commit
--   clock_lag_ms   trigger clock - written_at (the simpler estimate, for
--                  comparison; see freshness.sh for its biases)

CREATE UNLOGGED TABLE bench_lag (
    tview text NOT NULL,
    written_at timestamptz NOT NULL,
    seen_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE bench_write_lag (
    phase text NOT NULL,
    written_at timestamptz NOT NULL,
    writer_commit timestamptz,
    visible_at timestamptz,
    lag_ms double precision,
    clock_lag_ms double precision,
    nrows integer
);

-- (the engine runs with search_path = pg_catalog: qualified names)
CREATE FUNCTION bench_log_lag() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.bench_lag (tview, written_at)
    VALUES (TG_TABLE_NAME, (NEW.data->>'writtenAt')::timestamptz);
    RETURN NULL;
END
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['tv_user', 'tv_post', 'tv_comment'] LOOP
        EXECUTE format('CREATE TRIGGER bench_lag_ins AFTER INSERT ON %I
                        FOR EACH ROW EXECUTE FUNCTION bench_log_lag()', t);
        EXECUTE format('CREATE TRIGGER bench_lag_upd AFTER UPDATE ON %I FOR EACH ROW
                        WHEN (OLD.data->''writtenAt'' IS DISTINCT FROM NEW.data->''writtenAt'')
                        EXECUTE FUNCTION bench_log_lag()', t);
        -- fire whatever session_replication_role the engine runs with
        EXECUTE format('ALTER TABLE %I ENABLE ALWAYS TRIGGER bench_lag_ins', t);
        EXECUTE format('ALTER TABLE %I ENABLE ALWAYS TRIGGER bench_lag_upd', t);
    END LOOP;
END
$$;

-- Move the writes of a phase (written since `since`) from bench_lag into
-- bench_write_lag; returns the number of writes.
CREATE FUNCTION bench_collect_lag(phase text, since timestamptz) RETURNS bigint
LANGUAGE sql AS $$
    WITH l AS (
        SELECT written_at, max(pg_xact_commit_timestamp(xmin)) AS visible_at,
               max(seen_at) AS seen_at, count(*) AS nrows
        FROM bench_lag WHERE written_at >= since GROUP BY written_at
    ), w AS (
        SELECT DISTINCT ON (written_at) written_at, writer_commit
        FROM (SELECT written_at, pg_xact_commit_timestamp(xmin) AS writer_commit
              FROM tb_user WHERE written_at >= since
              UNION ALL
              SELECT written_at, pg_xact_commit_timestamp(xmin) FROM tb_post WHERE written_at >= since
              UNION ALL
              SELECT written_at, pg_xact_commit_timestamp(xmin) FROM tb_comment WHERE written_at >= since) b
        ORDER BY written_at, writer_commit
    ), ins AS (
        INSERT INTO bench_write_lag
        SELECT phase, l.written_at, w.writer_commit, l.visible_at,
               1000 * extract(epoch FROM l.visible_at - w.writer_commit),
               1000 * extract(epoch FROM l.seen_at - l.written_at),
               l.nrows
        FROM l LEFT JOIN w USING (written_at)
        RETURNING 1
    )
    SELECT count(*) FROM ins
$$;
