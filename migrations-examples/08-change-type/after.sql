CREATE SEQUENCE public.accounts_id_seq AS integer;
CREATE TABLE public.accounts (
    id bigint DEFAULT nextval('public.accounts_id_seq'::regclass) NOT NULL,
    name text NOT NULL,
    CONSTRAINT accounts_pkey PRIMARY KEY (id)
);
ALTER SEQUENCE public.accounts_id_seq OWNED BY public.accounts.id;
CREATE TABLE public.sessions (
    id bigint PRIMARY KEY,
    account_id integer NOT NULL,
    CONSTRAINT sessions_account_id_fkey FOREIGN KEY (account_id) REFERENCES public.accounts (id)
);
