CREATE TABLE public.users (
    id bigint PRIMARY KEY,
    email text NOT NULL,
    legacy_token text
);

-- A change written as code: seqmig cannot see what it does to public.users.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_settings WHERE name = 'server_version_num' AND setting::int >= 150000) THEN
        ALTER TABLE public.users DROP COLUMN legacy_token;
    END IF;
END
$$;
