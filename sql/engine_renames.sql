--
-- Renames: those that TVIEW maintenance follows, and those it refuses
-- because maintenance would silently stop (columns it names).
--
\set SHOW_CONTEXT never
CREATE SCHEMA rn;
CREATE TABLE rn.tb_author (pk_author int PRIMARY KEY, name text NOT NULL, bio text);
CREATE TABLE rn.tb_book (pk_book int PRIMARY KEY, fk_author int NOT NULL, title text NOT NULL);
INSERT INTO rn.tb_author VALUES (1, 'ann', 'x'), (2, 'bob', 'y');
INSERT INTO rn.tb_book VALUES (10, 1, 'a'), (20, 2, 'b'), (30, 1, 'c');
SET client_min_messages = warning;
SELECT pg_tviews_create('rn.tv_author', $$
    SELECT a.pk_author, a.name,
           (SELECT count(*) FROM rn.tb_book b WHERE b.fk_author = a.pk_author) AS books
    FROM rn.tb_author a$$);
SELECT pg_tviews_create('rn.tv_book', $$
    SELECT b.pk_book, b.fk_author, b.title, a.name AS author
    FROM rn.tb_book b JOIN rn.tb_author a ON a.pk_author = b.fk_author$$);
RESET client_min_messages;

-- refused: a lineage column (child), a key column, a parent's column, a
-- TVIEW's column -- with a clear error, nothing renamed
ALTER TABLE rn.tb_book RENAME COLUMN fk_author TO author_ref;
ALTER TABLE rn.tb_author RENAME pk_author TO id;
ALTER TABLE rn.tv_book RENAME COLUMN title TO headline;
\set VERBOSITY sqlstate
ALTER TABLE rn.tb_book RENAME COLUMN pk_book TO id;
\set VERBOSITY default
SELECT attname FROM pg_attribute WHERE attrelid = 'rn.tb_book'::regclass AND attnum > 0 ORDER BY attnum;

-- followed: a column only the definition reads, the base tables, their
-- schema, and the TVIEW itself
ALTER TABLE rn.tb_book RENAME COLUMN title TO headline;
ALTER TABLE rn.tb_author RENAME TO tb_writer;
ALTER SCHEMA rn RENAME TO rn2;
ALTER TABLE rn2.tv_book RENAME TO tv_volume;
INSERT INTO rn2.tb_book VALUES (40, 2, 'd');
UPDATE rn2.tb_writer SET name = 'anne' WHERE pk_author = 1;
UPDATE rn2.tb_book SET headline = 'a2' WHERE pk_book = 10;
SELECT pg_tviews_wait('30s');
SELECT * FROM rn2.tv_volume ORDER BY pk_book;
SELECT * FROM rn2.tv_author ORDER BY pk_author;
SELECT * FROM tview_diff('rn2.tv_volume');
SELECT * FROM tview_diff('rn2.tv_author');
-- the status tables show the new names, and the definition is the
-- current one (it runs)
SELECT entity_name, state, regexp_replace(definition, '\s+', ' ', 'g') AS definition
FROM pg_tviews_metadata WHERE entity_name LIKE 'rn2.%' ORDER BY 1;
SELECT pg_tviews_drop('rn2.tv_volume');
SELECT pg_tviews_drop('rn2.tv_author');
DROP SCHEMA rn2 CASCADE;
