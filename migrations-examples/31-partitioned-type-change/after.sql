-- value becomes bigint: a shadow column on the parent, kept current by row triggers on the partitioned table.
CREATE TABLE public.metrics (
    id bigint NOT NULL,
    value bigint,
    CONSTRAINT metrics_pkey PRIMARY KEY (id)
) PARTITION BY RANGE (id);
CREATE TABLE public.metrics_old PARTITION OF public.metrics FOR VALUES FROM (MINVALUE) TO (1000000) PARTITION BY HASH (id);
CREATE TABLE public.metrics_old_0 PARTITION OF public.metrics_old FOR VALUES WITH (modulus 2, remainder 0);
CREATE TABLE public.metrics_old_1 PARTITION OF public.metrics_old FOR VALUES WITH (modulus 2, remainder 1);
CREATE TABLE public.metrics_new PARTITION OF public.metrics FOR VALUES FROM (1000000) TO (MAXVALUE);
CREATE INDEX metrics_value_idx ON public.metrics (value);
