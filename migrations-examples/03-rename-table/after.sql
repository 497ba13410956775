CREATE TABLE public.persons (
    id bigint PRIMARY KEY,
    name text NOT NULL
);
