-- an author edits the title of a post
\set pid random(1, :posts)
\set r random(1, 1000000)
UPDATE tb_post SET title = 'post ' || :pid || ' edit ' || :r, written_at = clock_timestamp()
WHERE pk_post = :pid;
