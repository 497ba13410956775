CREATE TABLE public.people (
    id bigint PRIMARY KEY,
    name text NOT NULL
);
