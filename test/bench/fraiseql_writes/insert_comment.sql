-- a user comments on an existing post
\set pid random(1, :posts)
\set uid random(1, :users)
INSERT INTO tb_comment (fk_post, fk_user, body, written_at)
VALUES (:pid, :uid, 'a new comment by ' || :uid, clock_timestamp());
