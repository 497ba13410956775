-- Privileges that differ from an object's defaults (acldefault), as pg_dump computes them:
-- rows to GRANT (in the ACL, not in the defaults) and to REVOKE (in the defaults, not in the
-- ACL). Tables, views, sequences, schemas (not `public`), functions and procedures; not
-- extension members. Column privileges are not read.
WITH objs AS (
  SELECT CASE c.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END AS kind,
         pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname) AS name,
         c.relacl AS acl,
         pg_catalog.acldefault(CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END::"char", c.relowner) AS def,
         n.nspname::text AS schema, c.relname::text AS rel
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND c.relacl IS NOT NULL
    AND n.nspname <> ALL ($1::text[]) AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
    AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                    WHERE e.classid = 'pg_catalog.pg_class'::regclass AND e.objid = c.oid AND e.deptype = 'e')
  UNION ALL
  SELECT 'SCHEMA', pg_catalog.quote_ident(n.nspname), n.nspacl,
         pg_catalog.acldefault('n'::"char", n.nspowner), NULL, NULL
  FROM pg_catalog.pg_namespace n
  WHERE n.nspacl IS NOT NULL AND n.nspname <> 'public'
    AND n.nspname <> ALL ($1::text[]) AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
    AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                    WHERE e.classid = 'pg_catalog.pg_namespace'::regclass AND e.objid = n.oid AND e.deptype = 'e')
  UNION ALL
  SELECT CASE p.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END,
         pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(p.proname)
           || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')',
         p.proacl, pg_catalog.acldefault('f'::"char", p.proowner), NULL, NULL
  FROM pg_catalog.pg_proc p
  JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
  WHERE p.proacl IS NOT NULL AND p.prokind <> 'a'
    AND n.nspname <> ALL ($1::text[]) AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
    AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                    WHERE e.classid = 'pg_catalog.pg_proc'::regclass AND e.objid = p.oid AND e.deptype = 'e')
), items AS (
  SELECT o.kind, o.name, o.schema, o.rel, 'GRANT' AS action, a.grantee, a.privilege_type, a.is_grantable
  FROM objs o, pg_catalog.aclexplode(o.acl) a
  WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.aclexplode(o.def) d
                    WHERE d.grantee = a.grantee AND d.privilege_type = a.privilege_type
                      AND d.is_grantable = a.is_grantable)
  UNION ALL
  SELECT o.kind, o.name, o.schema, o.rel, 'REVOKE', d.grantee, d.privilege_type, false
  FROM objs o, pg_catalog.aclexplode(o.def) d
  WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.aclexplode(o.acl) a
                    WHERE a.grantee = d.grantee AND a.privilege_type = d.privilege_type)
)
SELECT kind, name, schema, rel, action,
       CASE WHEN grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(grantee)) END AS grantee,
       is_grantable AS grantable,
       array_agg(privilege_type::text ORDER BY privilege_type) AS privileges
FROM items
GROUP BY kind, name, schema, rel, action, grantee, is_grantable
ORDER BY 2, 5 DESC, 6
