-- One table per partitioning strategy, and a two-level one.
CREATE TABLE public.events (
    id bigint NOT NULL,
    kind text NOT NULL,
    note text,
    CONSTRAINT events_pkey PRIMARY KEY (id)
) PARTITION BY RANGE (id);
CREATE TABLE public.events_low PARTITION OF public.events FOR VALUES FROM (MINVALUE) TO (1000000);
CREATE TABLE public.events_high PARTITION OF public.events FOR VALUES FROM (1000000) TO (MAXVALUE);

CREATE TABLE public.accounts (
    id bigint NOT NULL,
    region text NOT NULL,
    name text,
    CONSTRAINT accounts_pkey PRIMARY KEY (id, region)
) PARTITION BY LIST (region);
CREATE TABLE public.accounts_eu PARTITION OF public.accounts FOR VALUES IN ('eu');
CREATE TABLE public.accounts_other PARTITION OF public.accounts DEFAULT;

CREATE TABLE public.sessions (
    id bigint NOT NULL,
    token text,
    CONSTRAINT sessions_pkey PRIMARY KEY (id)
) PARTITION BY HASH (id);
CREATE TABLE public.sessions_0 PARTITION OF public.sessions FOR VALUES WITH (modulus 2, remainder 0);
CREATE TABLE public.sessions_1 PARTITION OF public.sessions FOR VALUES WITH (modulus 2, remainder 1);

CREATE TABLE public.metrics (
    id bigint NOT NULL,
    value integer,
    legacy text,
    CONSTRAINT metrics_pkey PRIMARY KEY (id)
) PARTITION BY RANGE (id);
CREATE TABLE public.metrics_old PARTITION OF public.metrics FOR VALUES FROM (MINVALUE) TO (1000000) PARTITION BY HASH (id);
CREATE TABLE public.metrics_old_0 PARTITION OF public.metrics_old FOR VALUES WITH (modulus 2, remainder 0);
CREATE TABLE public.metrics_old_1 PARTITION OF public.metrics_old FOR VALUES WITH (modulus 2, remainder 1);
CREATE TABLE public.metrics_new PARTITION OF public.metrics FOR VALUES FROM (1000000) TO (MAXVALUE);
