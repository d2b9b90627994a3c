--
-- Scans of the status tables with expressions that allocate memory for
-- every row, in the select list and in the filter, over a few rows and
-- over a full queue history: the rows a scan returns must stay valid
-- while the next ones are fetched.
--
-- (Last in the schedule: a scan that reads freed memory may take the
-- server down, and the tests after it with it.)
--
\set SHOW_CONTEXT never
CREATE TABLE tb_mem (pk_mem int PRIMARY KEY, label text NOT NULL);
INSERT INTO tb_mem SELECT g, 'label ' || g FROM generate_series(1, 10) g;
SET client_min_messages = warning;
SELECT pg_tviews_create('tv_mem', $$
    SELECT m.pk_mem, m.label FROM tb_mem m
$$);
SELECT pg_tviews_create('tv_mem_with_a_rather_longer_name_than_usual', $$
    SELECT m.pk_mem, upper(m.label) AS label, length(m.label) AS len FROM tb_mem m
$$, key => 'pk_mem');
RESET client_min_messages;

-- a few rows: metadata, dependencies, workers
SELECT entity_name, length(repeat(entity_name, 300)) AS len
FROM pg_tviews_metadata ORDER BY entity_name COLLATE "C";
SELECT entity_name FROM pg_tviews_metadata
WHERE length(repeat(entity_name, 300)) > 0 ORDER BY entity_name COLLATE "C";
SELECT entity_name, regexp_replace(definition, '\s+', ' ', 'g') AS definition
FROM pg_tviews_metadata ORDER BY entity_name COLLATE "C";
SELECT entity_name, base_relation, lineage_rule
FROM pg_tviews_dependencies
WHERE repeat(entity_name || base_relation, 100) LIKE '%tb_mem%'
ORDER BY entity_name COLLATE "C";
SELECT worker_type, length(repeat(worker_type, 1000)) AS len
FROM pg_tviews_workers
WHERE worker_type = 'launcher' OR database = current_database()
ORDER BY worker_type;

-- a full queue history (the last 1024 refreshes)
UPDATE tb_mem SET label = label || '.';
INSERT INTO tb_mem SELECT g, 'label ' || g FROM generate_series(11, 1200) g;
SELECT pg_tviews_wait('60s');
SELECT count(*) >= 1000 AS full_history, count(*) = count(DISTINCT ctid) AS unique_ctids,
       count(DISTINCT repeat(primary_key_value, 50)) = count(DISTINCT primary_key_value) AS keys_ok
FROM pg_tviews_queue WHERE entity_name LIKE 'tv_mem%';
SELECT count(*) >= 1000 AS full_history
FROM pg_tviews_queue
WHERE upper(entity_name) || repeat(coalesce(primary_key_value, '*'), 20) LIKE 'TV_MEM%';
SELECT count(*) >= 1000 AS full_history, min(primary_key_value::int) > 0 AS keys_ok,
       bool_and(status = 'done') AS all_done
FROM (SELECT entity_name, primary_key_value, status, repeat(entity_name, 100) AS padding
      FROM pg_tviews_queue WHERE primary_key_value IS NOT NULL) q
WHERE entity_name LIKE 'tv_mem%';
-- the runbook's way of addressing rows, over the full history (processed
-- rows are history: nothing is deleted)
WITH d AS (
    DELETE FROM pg_tviews_queue
     WHERE ctid IN (SELECT q.ctid FROM pg_tviews_queue q WHERE q.primary_key_value IN ('5', '7'))
    RETURNING 1)
SELECT count(*) AS deleted FROM d;

DROP TABLE tv_mem, tv_mem_with_a_rather_longer_name_than_usual;
DROP TABLE tb_mem;
SELECT count(*) AS tviews FROM pg_tviews_metadata;
