-- a comment is deleted (one of the initial ones; 0 rows if already gone)
\set cid random(1, :comments)
DELETE FROM tb_comment WHERE pk_comment = :cid;
