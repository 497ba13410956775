-- A small hand-written schema: `seqmig inspect examples/shop.sql` shows what seqmig reads
-- from it (add `--format json` or `--format sql` for the full model).

CREATE TYPE order_status AS ENUM ('new', 'paid', 'shipped');

CREATE TABLE customers (
    id bigserial PRIMARY KEY,
    email text NOT NULL UNIQUE,
    "Display Name" text,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE orders (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers ON DELETE CASCADE,
    status order_status NOT NULL DEFAULT 'new',
    total_cents integer NOT NULL CHECK (total_cents >= 0)
);

CREATE INDEX orders_customer_id_idx ON orders (customer_id) WHERE status <> 'shipped';

CREATE VIEW open_orders AS
    SELECT o.id, o.status, c.email FROM orders o JOIN customers c ON c.id = o.customer_id
    WHERE o.status <> 'shipped';

CREATE FUNCTION order_count(customer bigint) RETURNS bigint
    LANGUAGE sql STABLE AS $$ SELECT count(*) FROM orders WHERE customer_id = customer $$;

COMMENT ON TABLE orders IS 'one row per checkout';
