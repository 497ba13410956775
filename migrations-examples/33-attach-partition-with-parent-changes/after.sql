-- A new period's partitions land in the same release as changes to their parents' columns:
-- events gains a column and loses one, accounts renames one, metrics gains a column and an
-- index on it.
CREATE TABLE public.events (
    id bigint NOT NULL,
    kind text NOT NULL,
    source text,
    CONSTRAINT events_pkey PRIMARY KEY (id),
    CONSTRAINT events_kind_check CHECK (kind <> '')
) PARTITION BY RANGE (id);
CREATE TABLE public.events_now PARTITION OF public.events FOR VALUES FROM (MINVALUE) TO (100000000);
CREATE TABLE public.events_default PARTITION OF public.events DEFAULT;
CREATE INDEX events_kind_idx ON public.events (kind);

CREATE TABLE public.accounts (
    id bigint NOT NULL,
    region text NOT NULL,
    display_name text,
    CONSTRAINT accounts_pkey PRIMARY KEY (id, region)
) PARTITION BY LIST (region);
CREATE TABLE public.accounts_eu PARTITION OF public.accounts FOR VALUES IN ('eu');
CREATE TABLE public.accounts_other PARTITION OF public.accounts DEFAULT;

CREATE TABLE public.metrics (
    id bigint NOT NULL,
    value integer,
    unit text,
    CONSTRAINT metrics_pkey PRIMARY KEY (id)
) PARTITION BY RANGE (id);
CREATE TABLE public.metrics_now PARTITION OF public.metrics FOR VALUES FROM (MINVALUE) TO (100000000) PARTITION BY HASH (id);
CREATE TABLE public.metrics_now_0 PARTITION OF public.metrics_now FOR VALUES WITH (modulus 2, remainder 0);
CREATE TABLE public.metrics_now_1 PARTITION OF public.metrics_now FOR VALUES WITH (modulus 2, remainder 1);
CREATE INDEX metrics_unit_idx ON public.metrics (unit);

-- New partitions: a RANGE one next to a DEFAULT one, a LIST one next to a DEFAULT one, and a
-- RANGE one partitioned again by HASH.
CREATE TABLE public.events_next PARTITION OF public.events FOR VALUES FROM (100000000) TO (200000000);
CREATE TABLE public.accounts_apac PARTITION OF public.accounts FOR VALUES IN ('apac', 'au');
CREATE TABLE public.metrics_next PARTITION OF public.metrics FOR VALUES FROM (100000000) TO (200000000) PARTITION BY HASH (id);
CREATE TABLE public.metrics_next_0 PARTITION OF public.metrics_next FOR VALUES WITH (modulus 2, remainder 0);
CREATE TABLE public.metrics_next_1 PARTITION OF public.metrics_next FOR VALUES WITH (modulus 2, remainder 1);
