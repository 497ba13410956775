-- Parents of every table (partition parents and INHERITS), in declaration order.
SELECT i.inhrelid AS child, pn.nspname::text AS schema, p.relname::text AS name
FROM pg_catalog.pg_inherits i
JOIN pg_catalog.pg_class p ON p.oid = i.inhparent
JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace
JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
WHERE c.relkind IN ('r', 'p', 'f')
ORDER BY i.inhrelid, i.inhseqno
