-- A new period's partitions land in the same release as changes to their parents' columns.
CREATE TABLE public.events (
    id bigint NOT NULL,
    kind text NOT NULL,
    note text,
    CONSTRAINT events_pkey PRIMARY KEY (id),
    CONSTRAINT events_kind_check CHECK (kind <> '')
) PARTITION BY RANGE (id);
CREATE TABLE public.events_now PARTITION OF public.events FOR VALUES FROM (MINVALUE) TO (100000000);
CREATE TABLE public.events_default PARTITION OF public.events DEFAULT;
CREATE INDEX events_kind_idx ON public.events (kind);

CREATE TABLE public.accounts (
    id bigint NOT NULL,
    region text NOT NULL,
    name text,
    CONSTRAINT accounts_pkey PRIMARY KEY (id, region)
) PARTITION BY LIST (region);
CREATE TABLE public.accounts_eu PARTITION OF public.accounts FOR VALUES IN ('eu');
CREATE TABLE public.accounts_other PARTITION OF public.accounts DEFAULT;

CREATE TABLE public.metrics (
    id bigint NOT NULL,
    value integer,
    CONSTRAINT metrics_pkey PRIMARY KEY (id)
) PARTITION BY RANGE (id);
CREATE TABLE public.metrics_now PARTITION OF public.metrics FOR VALUES FROM (MINVALUE) TO (100000000) PARTITION BY HASH (id);
CREATE TABLE public.metrics_now_0 PARTITION OF public.metrics_now FOR VALUES WITH (modulus 2, remainder 0);
CREATE TABLE public.metrics_now_1 PARTITION OF public.metrics_now FOR VALUES WITH (modulus 2, remainder 1);
