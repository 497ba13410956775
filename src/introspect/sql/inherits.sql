-- Parents of every table (partition parents and INHERITS), in declaration order, and the
-- partitioned index each partition's index is attached to (ALTER INDEX … ATTACH PARTITION).
SELECT i.inhrelid AS child, c.relkind::text AS child_kind,
       cn.nspname::text AS child_schema, c.relname::text AS child_name,
       pn.nspname::text AS schema, p.relname::text AS name
FROM pg_catalog.pg_inherits i
JOIN pg_catalog.pg_class p ON p.oid = i.inhparent
JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace
JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
JOIN pg_catalog.pg_namespace cn ON cn.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'f', 'i', 'I')
  AND cn.nspname <> ALL ($1::text[])
ORDER BY i.inhrelid, i.inhseqno
