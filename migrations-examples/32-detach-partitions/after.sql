-- Partitions of expired data are detached and dropped: the file lists the partition sets in
-- full ([plan] authoritative_partitions), so a partition it lacks is one to remove.
CREATE TABLE public.events (
    id bigint NOT NULL,
    kind text NOT NULL,
    note text,
    CONSTRAINT events_pkey PRIMARY KEY (id),
    CONSTRAINT events_kind_check CHECK (kind <> '')
) PARTITION BY RANGE (id);
CREATE TABLE public.events_now PARTITION OF public.events FOR VALUES FROM (0) TO (MAXVALUE);
CREATE INDEX events_kind_idx ON public.events (kind);

CREATE TABLE public.accounts (
    id bigint NOT NULL,
    region text NOT NULL,
    name text,
    CONSTRAINT accounts_pkey PRIMARY KEY (id, region)
) PARTITION BY LIST (region);
CREATE TABLE public.accounts_eu PARTITION OF public.accounts FOR VALUES IN ('eu');
CREATE TABLE public.accounts_other PARTITION OF public.accounts DEFAULT;
