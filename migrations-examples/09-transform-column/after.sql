CREATE TABLE public.orders (
    id bigint PRIMARY KEY,
    price_cents bigint NOT NULL
);
