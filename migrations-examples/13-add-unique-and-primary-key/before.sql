CREATE TABLE public.tags (
    id bigint NOT NULL,
    slug text NOT NULL
);
