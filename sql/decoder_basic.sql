--
-- The json format for each action on a simple table.
--
SELECT 'init' FROM pg_create_logical_replication_slot('basic', 'pg_tviews_decoder');

CREATE TABLE basic (id int PRIMARY KEY, name text, score numeric);
INSERT INTO basic VALUES (1, 'one', 1.5), (2, 'two', NULL);
UPDATE basic SET name = 'uno' WHERE id = 1;
UPDATE basic SET id = 3 WHERE id = 2;
DELETE FROM basic WHERE id = 1;
SELECT * FROM decode('basic');

-- nothing is left once consumed
SELECT count(*) FROM decode('basic');

SELECT pg_drop_replication_slot('basic');
DROP TABLE basic;
