CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;

CREATE TABLE public.users (
    id bigint PRIMARY KEY,
    email text NOT NULL
);
