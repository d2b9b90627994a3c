-- a user renames themselves (the name is embedded in their posts and comments)
\set uid random(1, :users)
\set r random(1, 1000000)
UPDATE tb_user SET name = 'user ' || :uid || ' v' || :r, written_at = clock_timestamp()
WHERE pk_user = :uid;
