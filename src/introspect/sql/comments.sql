-- COMMENT ON … for user objects, with what is needed to name the object the way the model
-- does. objsubid > 0 is a column.
SELECT CASE d.classoid
         WHEN 'pg_catalog.pg_class'::regclass THEN
           CASE WHEN d.objsubid > 0 THEN 'column'
                ELSE CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' WHEN 'v' THEN 'view'
                       WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence' WHEN 'i' THEN 'index'
                       WHEN 'I' THEN 'index' WHEN 'f' THEN 'foreign table' WHEN 'c' THEN 'type' END END
         WHEN 'pg_catalog.pg_type'::regclass THEN CASE WHEN ty.typtype = 'd' THEN 'domain' ELSE 'type' END
         WHEN 'pg_catalog.pg_proc'::regclass THEN
           CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' ELSE 'function' END
         WHEN 'pg_catalog.pg_namespace'::regclass THEN 'schema'
         WHEN 'pg_catalog.pg_extension'::regclass THEN 'extension'
         WHEN 'pg_catalog.pg_constraint'::regclass THEN
           CASE WHEN con.contypid <> 0 THEN 'domain constraint' ELSE 'constraint' END
         WHEN 'pg_catalog.pg_trigger'::regclass THEN 'trigger'
         WHEN 'pg_catalog.pg_policy'::regclass THEN 'policy'
         WHEN 'pg_catalog.pg_rewrite'::regclass THEN 'rule'
       END AS kind,
       coalesce(cn.nspname, tn.nspname, pn.nspname, nn.nspname, conn.nspname, trn.nspname,
                poln.nspname, rwn.nspname)::text AS schema,
       coalesce(c.relname, ty.typname, p.proname, nsp.nspname, ext.extname, con.conname,
                tg.tgname, pol.polname, rw.rulename)::text AS name,
       a.attname::text AS column_name,
       -- The table (or domain) a constraint, trigger, policy or rule belongs to.
       coalesce(conc.relname, cont.typname, tgc.relname, polc.relname, rwc.relname)::text AS parent,
       CASE WHEN d.classoid = 'pg_catalog.pg_proc'::regclass THEN
         ARRAY(SELECT pg_catalog.format_type(u.typ, NULL)
               FROM unnest(p.proargtypes) WITH ORDINALITY u(typ, ord) ORDER BY u.ord) END AS arg_types,
       d.description
FROM pg_catalog.pg_description d
LEFT JOIN pg_catalog.pg_class c ON d.classoid = 'pg_catalog.pg_class'::regclass AND c.oid = d.objoid
LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_attribute a ON d.objsubid > 0 AND a.attrelid = c.oid AND a.attnum = d.objsubid
LEFT JOIN pg_catalog.pg_type ty ON d.classoid = 'pg_catalog.pg_type'::regclass AND ty.oid = d.objoid
LEFT JOIN pg_catalog.pg_namespace tn ON tn.oid = ty.typnamespace
LEFT JOIN pg_catalog.pg_proc p ON d.classoid = 'pg_catalog.pg_proc'::regclass AND p.oid = d.objoid
LEFT JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace
LEFT JOIN pg_catalog.pg_namespace nsp ON d.classoid = 'pg_catalog.pg_namespace'::regclass AND nsp.oid = d.objoid
LEFT JOIN pg_catalog.pg_namespace nn ON nn.oid = nsp.oid
LEFT JOIN pg_catalog.pg_extension ext ON d.classoid = 'pg_catalog.pg_extension'::regclass AND ext.oid = d.objoid
LEFT JOIN pg_catalog.pg_constraint con ON d.classoid = 'pg_catalog.pg_constraint'::regclass AND con.oid = d.objoid
LEFT JOIN pg_catalog.pg_namespace conn ON conn.oid = con.connamespace
LEFT JOIN pg_catalog.pg_class conc ON conc.oid = con.conrelid
LEFT JOIN pg_catalog.pg_type cont ON cont.oid = con.contypid
LEFT JOIN pg_catalog.pg_trigger tg ON d.classoid = 'pg_catalog.pg_trigger'::regclass AND tg.oid = d.objoid
LEFT JOIN pg_catalog.pg_class tgc ON tgc.oid = tg.tgrelid
LEFT JOIN pg_catalog.pg_namespace trn ON trn.oid = tgc.relnamespace
LEFT JOIN pg_catalog.pg_policy pol ON d.classoid = 'pg_catalog.pg_policy'::regclass AND pol.oid = d.objoid
LEFT JOIN pg_catalog.pg_class polc ON polc.oid = pol.polrelid
LEFT JOIN pg_catalog.pg_namespace poln ON poln.oid = polc.relnamespace
LEFT JOIN pg_catalog.pg_rewrite rw ON d.classoid = 'pg_catalog.pg_rewrite'::regclass AND rw.oid = d.objoid
LEFT JOIN pg_catalog.pg_class rwc ON rwc.oid = rw.ev_class
LEFT JOIN pg_catalog.pg_namespace rwn ON rwn.oid = rwc.relnamespace
WHERE coalesce(cn.nspname, tn.nspname, pn.nspname, nn.nspname, conn.nspname, trn.nspname,
               poln.nspname, rwn.nspname, 'x') <> ALL ($1::text[])
  AND coalesce(cn.nspname, tn.nspname, pn.nspname, nn.nspname, conn.nspname, trn.nspname,
               poln.nspname, rwn.nspname, 'x') !~ '^pg_(toast|temp_|toast_temp_)'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend dep
                  WHERE dep.classid = d.classoid AND dep.objid = d.objoid AND dep.deptype = 'e')
  AND NOT (d.classoid = 'pg_catalog.pg_namespace'::regclass AND nsp.nspname = 'public'
           AND d.description = 'standard public schema')
ORDER BY 1, 2, 3, 4
