-- a user writes a new post (pgbench script; -D users=N -D posts=N -D comments=N)
\set uid random(1, :users)
INSERT INTO tb_post (fk_user, title, body, written_at)
VALUES (:uid, 'new post by ' || :uid, 'a new post body ' || repeat('lorem ipsum ', 6), clock_timestamp());
