-- test/bench/decode_setup.sql -- schema and helpers of test/bench/decode.sh.
--
-- Loaded into the benchmark's own throwaway cluster before the logical
-- slots are created, so none of this DDL is in the decoded WAL.

SET client_min_messages = warning;

-- A realistic row: a bigint key, several integers, a text, a numeric, a
-- timestamptz, a jsonb and a bool (10 columns, about 200 bytes).  The
-- default replica identity (the primary key) applies: updates carry no
-- old tuple, deletes carry the old key.
CREATE TABLE bench_orders (
	id			bigint PRIMARY KEY,
	customer_id	integer NOT NULL,
	quantity	integer NOT NULL,
	status		smallint NOT NULL,
	total_cents	bigint NOT NULL,
	note		text,
	amount		numeric(12,2) NOT NULL,
	created_at	timestamptz NOT NULL,
	attrs		jsonb,
	active		boolean NOT NULL
) WITH (autovacuum_enabled = false);

-- The workload: nchanges row changes, 70% inserts, 20% updates, 10%
-- deletes, in statements of up to 1000 changes, committed every txn_size
-- changes (txn_size <= 0: everything in one transaction).  A batch updates
-- the last rows and deletes the first rows inserted by the previous batch
-- (the first batch: its own), so every statement touches exactly the rows
-- it is meant to and the WAL holds exactly nchanges row changes.
CREATE PROCEDURE bench_workload(nchanges bigint, txn_size bigint)
LANGUAGE plpgsql AS $$
DECLARE
	batch		bigint := CASE WHEN txn_size > 0 THEN least(txn_size, 1000) ELSE 1000 END;
	done		bigint := 0;
	in_txn		bigint := 0;
	hi			bigint := 0;	-- highest id inserted so far
	prev_lo		bigint;			-- id range inserted by the previous batch
	prev_hi		bigint;
	lo			bigint;
	this_n		bigint;
	ni			bigint;
	nu			bigint;
	nd			bigint;
BEGIN
	WHILE done < nchanges LOOP
		this_n := least(batch, nchanges - done);
		IF txn_size > 0 THEN
			this_n := least(this_n, txn_size - in_txn);	-- never straddle a commit
		END IF;
		nu := this_n / 5;
		nd := this_n / 10;
		ni := this_n - nu - nd;

		lo := hi + 1;
		INSERT INTO bench_orders
		SELECT i,
			   (i * 7919) % 100000,
			   1 + i % 50,
			   (i % 5)::smallint,
			   i * 1234,
			   'order ' || i || ' for customer ' || md5(i::text),
			   ((i * 37) % 1000000) / 100.0,
			   timestamptz '2024-01-01 00:00:00+00' + i * interval '1 second',
			   jsonb_build_object('source', 'web', 'priority', i % 3,
								  'tags', jsonb_build_array('a', 'b', i % 10)),
			   i % 2 = 0
		FROM generate_series(lo, hi + ni) AS i;
		hi := hi + ni;

		-- the first batch works on its own rows: it updates the rows the
		-- second batch will update, and deletes others than those the
		-- second batch will delete
		IF nu > 0 THEN
			UPDATE bench_orders
			   SET quantity = quantity + 1,
				   status = ((status + 1) % 5)::smallint,
				   amount = amount + 1.25,
				   created_at = created_at + interval '1 hour',
				   attrs = attrs || '{"updated": true}',
				   active = NOT active
			 WHERE id BETWEEN coalesce(prev_hi, hi) - nu + 1 AND coalesce(prev_hi, hi);
		END IF;
		IF nd > 0 THEN
			DELETE FROM bench_orders
			 WHERE id BETWEEN coalesce(prev_lo, lo + nd) AND coalesce(prev_lo, lo + nd) + nd - 1;
		END IF;
		prev_lo := lo;
		prev_hi := hi;

		done := done + this_n;
		in_txn := in_txn + this_n;
		IF txn_size > 0 AND in_txn >= txn_size THEN
			COMMIT;
			in_txn := 0;
		END IF;
	END LOOP;
END
$$;

-- bench_cpu_ticks(): test/bench/lib_engine.sql, loaded first by decode.sh.

-- One timed decoding pass: every change from the slot's restart point to
-- the end of the WAL, through the SQL interface, without consuming it.
-- count(*) keeps the client out of the measurement.
CREATE FUNCTION bench_peek(slot name, is_binary boolean, opts text[],
						   ticks_per_second integer DEFAULT 100,
						   OUT nrows bigint, OUT seconds float8,
						   OUT cpu_seconds float8)
LANGUAGE plpgsql AS $$
DECLARE
	t0			timestamptz;
	c0			bigint;
BEGIN
	c0 := bench_cpu_ticks();
	t0 := clock_timestamp();
	IF is_binary THEN
		SELECT count(*) INTO nrows
		  FROM pg_logical_slot_peek_binary_changes(slot, NULL, NULL, VARIADIC opts);
	ELSE
		SELECT count(*) INTO nrows
		  FROM pg_logical_slot_peek_changes(slot, NULL, NULL, VARIADIC opts);
	END IF;
	seconds := extract(epoch FROM clock_timestamp() - t0);
	cpu_seconds := (bench_cpu_ticks() - c0)::float8 / ticks_per_second;
END
$$;

-- The untimed pass: how many rows and bytes a plugin outputs.
CREATE FUNCTION bench_output_size(slot name, is_binary boolean, opts text[],
								  OUT nrows bigint, OUT nbytes bigint)
LANGUAGE plpgsql AS $$
BEGIN
	IF is_binary THEN
		SELECT count(*), coalesce(sum(octet_length(data)), 0) INTO nrows, nbytes
		  FROM pg_logical_slot_peek_binary_changes(slot, NULL, NULL, VARIADIC opts);
	ELSE
		SELECT count(*), coalesce(sum(octet_length(data)), 0) INTO nrows, nbytes
		  FROM pg_logical_slot_peek_changes(slot, NULL, NULL, VARIADIC opts);
	END IF;
END
$$;
