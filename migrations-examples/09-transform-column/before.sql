CREATE TABLE public.orders (
    id bigint PRIMARY KEY,
    price numeric(12,2) NOT NULL
);
