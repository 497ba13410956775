SET lock_timeout = '2s';
SET statement_timeout = '5min';
CREATE INDEX index_comments_on_post_id ON comments (post_id);
