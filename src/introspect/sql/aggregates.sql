-- The parts of CREATE AGGREGATE, for aggregates of user schemas.
SELECT a.aggfnoid::oid AS oid,
       a.aggtransfn::regproc::text AS sfunc,
       pg_catalog.format_type(a.aggtranstype, NULL) AS stype,
       NULLIF(a.aggtransspace, 0)::int4 AS sspace,
       CASE WHEN a.aggfinalfn <> 0 THEN a.aggfinalfn::regproc::text END AS finalfunc,
       a.aggfinalextra AS finalfunc_extra,
       CASE WHEN a.aggcombinefn <> 0 THEN a.aggcombinefn::regproc::text END AS combinefunc,
       a.agginitval AS initcond,
       CASE WHEN a.aggsortop <> 0 THEN a.aggsortop::regoperator::text END AS sortop,
       a.aggkind::text AS kind
FROM pg_catalog.pg_aggregate a
JOIN pg_catalog.pg_proc p ON p.oid = a.aggfnoid
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname <> ALL ($1::text[])
  AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
