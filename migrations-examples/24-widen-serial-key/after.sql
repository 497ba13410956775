CREATE SEQUENCE public.orders_id_seq;
CREATE TABLE public.orders (
    id bigint DEFAULT nextval('public.orders_id_seq'::regclass) NOT NULL,
    total_cents bigint NOT NULL,
    CONSTRAINT orders_pkey PRIMARY KEY (id)
);
ALTER SEQUENCE public.orders_id_seq OWNED BY public.orders.id;
CREATE TABLE public.order_lines (
    id bigint PRIMARY KEY,
    order_id bigint NOT NULL,
    CONSTRAINT order_lines_order_id_fkey FOREIGN KEY (order_id) REFERENCES public.orders (id)
);
CREATE INDEX order_lines_order_id_idx ON public.order_lines (order_id);
