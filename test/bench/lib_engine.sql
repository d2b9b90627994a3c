-- test/bench/lib_engine.sql -- SQL helpers of the engine benchmarks
-- (loaded by bench_start in test/bench/lib_engine.sh).

SET client_min_messages = warning;

-- CPU time (user + system, in clock ticks) this backend has used so far,
-- from /proc/self/stat (Linux; NULL elsewhere).
CREATE FUNCTION bench_cpu_ticks() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	f			text[];
BEGIN
	f := string_to_array(split_part(pg_read_file('/proc/self/stat'), ') ', 2), ' ');
	RETURN f[12]::bigint + f[13]::bigint;
EXCEPTION WHEN OTHERS THEN
	RETURN NULL;
END
$$;

-- Run a statement, timed inside the server: wall and CPU seconds.
CREATE FUNCTION bench_timed(stmt text, ticks_per_second integer DEFAULT 100,
							OUT seconds float8, OUT cpu_seconds float8)
LANGUAGE plpgsql AS $$
DECLARE
	t0			timestamptz;
	c0			bigint;
BEGIN
	c0 := bench_cpu_ticks();
	t0 := clock_timestamp();
	EXECUTE stmt;
	seconds := extract(epoch FROM clock_timestamp() - t0);
	cpu_seconds := (bench_cpu_ticks() - c0)::float8 / ticks_per_second;
END
$$;

-- Update rows lo .. lo + nchanges - 1 of a table (by its bigint key
-- column), txn_size rows per transaction: SET setlist.
CREATE PROCEDURE bench_update_range(tbl regclass, keycol name, setlist text,
									lo bigint, nchanges bigint, txn_size bigint)
LANGUAGE plpgsql AS $$
DECLARE
	a			bigint := lo;
	hi			bigint := lo + nchanges - 1;
BEGIN
	WHILE a <= hi LOOP
		EXECUTE format('UPDATE %s SET %s WHERE %I BETWEEN $1 AND $2', tbl, setlist, keycol)
			USING a, least(a + txn_size - 1, hi);
		COMMIT;
		a := a + txn_size;
	END LOOP;
END
$$;
