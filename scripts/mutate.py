#!/usr/bin/env python3
"""Mutation driver: one realistic change at a time on a real schema, planned and rehearsed.

For a schema dump (pg_dump --schema-only style), it picks real tables and columns -- the
most referenced first (views, foreign keys pointing at them, triggers, policies, indexes) --
and writes, per mutation, a desired schema that differs from the dump by ONE change, edited
into the text the way a person edits a schema file: add a nullable column, add a NOT NULL
column with a default, set NOT NULL, change a type, rename a column or a table (with the
rename hint), drop a column (acknowledged), add an index / unique index, a foreign key, a
CHECK, drop a default. Then it runs `seqmig plan --format json` and, when the plan is safe
(exit 0), `seqmig rehearse`, and classifies each result:

  ok            plan safe and the rehearsal passed
  blocked       plan exit 1 with findings that name the object
  BUG-rehearse  plan said safe (exit 0) but the rehearsal failed (exit 1)
  warned        the rehearsal's only failure is data a backfill rollback cannot restore on a
                table the plan warned about (backfill-fires-trigger: its own UPDATE trigger)
  BUG-unnamed   plan blocked with a finding whose object is empty
  BUG-crash     a panic, or exit 2 from plan on two schemas that load
  invalid       the desired schema itself does not load (rehearse exit 2): the mutation's fault

Usage (see the README, "Mutations on real schemas"):

  scripts/mutate.py --corpus /work/shared/corpus/danbooru-structure.sql \
      --seqmig target/debug/seqmig --database-url postgres://postgres@127.0.0.1:5432/postgres \
      --out /tmp/mutations/danbooru [--limit 80] [--kinds add_nullable,rename_column] [--seed 1]

Writes one directory per mutation under --out (to.sql, seqmig.toml, plan.json, rehearse.txt)
and a summary (summary.tsv, and the counts per class on stdout). Nothing is written into the
repository; the corpus files are only read.
"""

import argparse
import json
import os
import random
import re
import subprocess
import sys
import time

# ---------------------------------------------------------------- schema text helpers


def pg15_compatible(text):
    """Pagila uses PostgreSQL 18 (uuidv7(), VIRTUAL generated columns) and pgvector; the
    scratch server is 15. Replace those by their PG 15 equivalents so the schema loads."""
    text = text.replace("uuidv7()", "gen_random_uuid()")
    text = re.sub(r"\) VIRTUAL", ") STORED", text)
    text = re.sub(r"CREATE EXTENSION IF NOT EXISTS vector[^;]*;", "", text)
    text = re.sub(r"COMMENT ON EXTENSION vector IS '[^']*';", "", text)
    text = text.replace("public.vector(20)", "real[]")
    text = re.sub(r"CREATE INDEX \S+ ON \S+ USING hnsw \([^;]*;", "", text)
    return text


def split_statements(text):
    """Approximate statement chunks: dumps end statements with ';' then a blank line."""
    return re.split(r";\n(?=\s*\n)", text)


def short(qname):
    return qname.split(".", 1)[1] if qname.startswith("public.") else qname


def name_re(qname):
    """Regex for a table name as a dump spells it: public.t, "public"."t" or plain t."""
    s = re.escape(short(qname))
    return r'(?<![\w."])(?:public\.|"public"\.)?"?' + s + r'"?(?![\w"])'


def table_block(text, qname):
    """(start, end) of the CREATE TABLE statement of qname, end at its closing ')'."""
    m = re.search(r"^CREATE (?:UNLOGGED )?TABLE " + name_re(qname) + r" \(\n", text, re.M)
    if not m:
        return None
    close = re.compile(r"^\)", re.M).search(text, m.end())
    if not close:
        return None
    return m.start(), close.start()


def column_line(text, qname, col):
    blk = table_block(text, qname)
    if not blk:
        return None
    body = text[blk[0] : blk[1]]
    m = re.search(r'^    "?' + re.escape(col) + r'"? [^\n]*$', body, re.M)
    if not m:
        return None
    return blk[0] + m.start(), blk[0] + m.end()


def edit_column(text, qname, col, fn):
    span = column_line(text, qname, col)
    if not span:
        return None
    line = text[span[0] : span[1]]
    comma = line.endswith(",")
    core = line[:-1] if comma else line
    new = fn(core)
    if new is None:
        return None
    if new == "":  # drop the line
        start, end = span
        if not comma:  # the last line: take the comma off the previous line
            prev_end = start - 1
            prev_start = text.rfind("\n", 0, prev_end) + 1
            prev = text[prev_start:prev_end]
            if not prev.endswith(","):
                return None
            return text[:prev_start] + prev[:-1] + "\n" + text[end + 1 :]
        return text[:start] + text[end + 1 :]
    return text[: span[0]] + new + ("," if comma else "") + text[span[1] :]


def append_column(text, qname, line):
    blk = table_block(text, qname)
    if not blk:
        return None
    end = blk[1]  # position of ')'
    before = text[: end].rstrip("\n")
    return before + ",\n    " + line + "\n" + text[end:]


def append_statement(text, sql):
    return text.rstrip("\n") + "\n\n" + sql + "\n"


# ---------------------------------------------------------------- the model


class Schema:
    def __init__(self, model, text):
        self.m = model
        self.text = text
        self.stmts = split_statements(text)
        self.tables = {
            k: v for k, v in model["tables"].items() if not v.get("partition_of") and v.get("columns")
        }
        self.score = {}
        refs = {}
        for qn, t in model["tables"].items():
            for c in t["constraints"].values():
                k = c["kind"]
                if k["type"] == "foreign_key":
                    refs.setdefault(k["ref_table"], []).append((qn, c))
        self.fk_in = refs
        for qn in self.tables:
            rx = re.compile(name_re(qn))
            views = [v for v, d in model["views"].items() if rx.search(d.get("definition", ""))]
            opaque = [o[0]["kind"] for o in model["opaque"] if qn in (o[1].get("depends_on") or [])]
            idx = [i for i in model["indexes"].values() if i["table"] == qn]
            s = 3 * len(views) + 2 * len(refs.get(qn, [])) + 2 * len(opaque) + len(idx)
            s += 3 * sum(1 for i in idx if i.get("predicate"))
            s += 3 * sum(1 for c in self.tables[qn]["columns"] if c.get("generated"))
            s += 3 * len(self.tables[qn].get("inherits") or [])
            s += 3 * sum(1 for t in model["tables"].values() if qn in (t.get("inherits") or []))
            self.score[qn] = s

    def ranked(self):
        return sorted(self.tables, key=lambda q: (-self.score[q], q))

    def pk(self, qn):
        for c in self.tables[qn]["constraints"].values():
            if c["kind"]["type"] == "primary_key":
                return c["kind"]["columns"]
        return None

    def col_confined(self, qn, col):
        """Every statement naming col also names the table: renaming col there is the
        whole edit."""
        crx = re.compile(r'(?<![\w$])"?' + re.escape(col) + r'"?(?![\w])')
        trx = re.compile(name_re(qn))
        hits = [s for s in self.stmts if crx.search(s)]
        return all(trx.search(s) for s in hits), hits


# ---------------------------------------------------------------- mutations

NEW = "mut_added"


def m_add_nullable(s, qn, rnd):
    typ = rnd.choice(["text", "integer", "timestamp with time zone", "jsonb", "boolean"])
    return append_column(s.text, qn, f"{NEW} {typ}"), {}, f"add nullable {typ} column"


def m_add_notnull_default(s, qn, rnd):
    typ, dflt = rnd.choice(
        [
            ("integer", "0"),
            ("text", "''::text"),
            ("boolean", "false"),
            ("timestamp with time zone", "now()"),
            ("uuid", "gen_random_uuid()"),
        ]
    )
    return (
        append_column(s.text, qn, f"{NEW} {typ} DEFAULT {dflt} NOT NULL"),
        {},
        f"add {typ} NOT NULL DEFAULT {dflt}",
    )


def nullable_cols(s, qn):
    return [c for c in s.tables[qn]["columns"] if not c["not_null"] and not c.get("generated")]


def fill_for(data_type):
    """A value of the type for the rows a [[fill]] must give one, or None (then the plan is
    blocked by missing-fill, as it should be)."""
    t = data_type.lower()
    for prefix, value in (
        ("smallint", "0"), ("integer", "0"), ("bigint", "0"), ("numeric", "0"), ("double", "0"),
        ("real", "0"), ("boolean", "false"), ("text", "''"), ("character", "''"), ("citext", "''"),
        ("timestamp", "now()"), ("date", "current_date"), ("uuid", "gen_random_uuid()"),
        ("jsonb", "'{}'"), ("json", "'{}'"), ("inet", "'0.0.0.0'"),
    ):
        if t.startswith(prefix):
            return value
    return None


def fill_hint(qn, col):
    value = fill_for(col["data_type"])
    return {"fill": [{"table": qn, "column": col["name"], "value": value}]} if value else {}


def m_set_not_null(s, qn, rnd, col):
    def f(line):
        return line + " NOT NULL"

    return edit_column(s.text, qn, col["name"], f), fill_hint(qn, col), f"set NOT NULL on {col['name']}"


TYPE_CHANGES = [
    ("integer", "bigint"),
    ("character varying(", "text"),
    ("character varying", "text"),
    ("text", "character varying(512)"),
    ("integer", "text"),
    ("timestamp without time zone", "timestamp with time zone"),
    ("numeric(", "numeric(20,4)"),
    ("smallint", "integer"),
]


def m_change_type(s, qn, rnd, col, old, new):
    def f(line):
        m = re.match(r'^(    "?' + re.escape(col["name"]) + r'"? )(.*)$', line)
        rest = m.group(2)
        if old.endswith("("):
            mm = re.match(re.escape(old) + r"[0-9, ]*\)", rest)
            if not mm:
                return None
            return m.group(1) + new + rest[mm.end() :]
        if not re.match(re.escape(old) + r"(?![\w(\[])", rest):
            return None
        return m.group(1) + new + rest[len(old) :]

    return edit_column(s.text, qn, col["name"], f), {}, f"{col['name']}: {old} -> {new}"


def m_rename_column(s, qn, rnd, col):
    ok, hits = s.col_confined(qn, col["name"])
    if not ok:
        return None, {}, ""
    new = col["name"] + "_renamed"
    crx = re.compile(r'(?<![\w$])("?)' + re.escape(col["name"]) + r'("?)(?![\w])')
    text = s.text
    for h in hits:
        text = text.replace(h, crx.sub(lambda m: m.group(1) + new + m.group(2), h), 1)
    hint = {"rename": [{"table": qn, "from": col["name"], "to": new}]}
    return text, hint, f"rename column {col['name']} -> {new}"


def m_drop_column(s, qn, rnd, col):
    ok, hits = s.col_confined(qn, col["name"])
    if not ok or len(hits) > 1:  # only the table's own block names it
        return None, {}, ""
    text = edit_column(s.text, qn, col["name"], lambda line: "")
    hint = {"plan": {"allow_one_way": [f"{qn}.{col['name']}"]}}
    if col["not_null"] and col.get("default") is None and not col.get("identity") and not col.get("generated"):
        hint.update(fill_hint(qn, col))
    return text, hint, f"drop column {col['name']}"


def m_add_index(s, qn, rnd, col, unique):
    if unique:
        pk = s.pk(qn)
        if not pk:
            return None, {}, ""
        cols = ", ".join(pk + [col["name"]]) if col["name"] not in pk else ", ".join(pk)
        sql = f"CREATE UNIQUE INDEX mut_uidx ON {qn} USING btree ({cols});"
    else:
        sql = f"CREATE INDEX mut_idx ON {qn} USING btree ({col['name']});"
    return append_statement(s.text, sql), {}, sql


def m_add_partial_index(s, qn, rnd, col):
    sql = f"CREATE INDEX mut_pidx ON {qn} USING btree ({col['name']}) WHERE ({col['name']} IS NOT NULL);"
    return append_statement(s.text, sql), {}, sql


def m_add_fk(s, qn, rnd, col, ref, refcol):
    sql = (
        f"ALTER TABLE ONLY {qn}\n    ADD CONSTRAINT mut_fk FOREIGN KEY ({col['name']}) "
        f"REFERENCES {ref}({refcol});"
    )
    return append_statement(s.text, sql), {}, f"FK {col['name']} -> {ref}({refcol})"


def m_add_check(s, qn, rnd, col):
    t = col["data_type"]
    if t in ("integer", "bigint", "smallint") or t.startswith("numeric"):
        expr = f"({col['name']} > '-1000000000'::integer)" if t != "bigint" else f"({col['name']} > '-1000000000'::bigint)"
    elif t in ("text", "character varying") or t.startswith("character varying"):
        expr = f"(length(({col['name']})::text) < 100000)"
    else:
        expr = f"({col['name']} IS NOT NULL OR {col['name']} IS NULL)"
    sql = f"ALTER TABLE {qn}\n    ADD CONSTRAINT mut_check CHECK ({expr});"
    return append_statement(s.text, sql), {}, sql


def m_rename_table(s, qn, rnd):
    new = short(qn) + "_renamed"
    rx = re.compile(r'(?<![\w."])((?:public\.|"public"\.)?"?)' + re.escape(short(qn)) + r'("?)(?![\w"])')
    text = rx.sub(lambda m: m.group(1) + new + m.group(2), s.text)
    hint = {"rename": [{"from": qn, "to": new}]}
    return text, hint, f"rename table -> {new}"


def m_drop_default(s, qn, rnd, col):
    def f(line):
        m = re.search(r" DEFAULT (.*?)( NOT NULL)?$", line)
        if not m:
            return None
        return line[: m.start()] + (m.group(2) or "")

    return edit_column(s.text, qn, col["name"], f), {}, f"drop default of {col['name']} ({col['default']})"


def generate(s, rnd, per_kind, kinds):
    """Yield (kind, table, text, hints, summary)."""
    ranked = s.ranked()
    top = ranked[: max(10, len(ranked) // 3)]
    out = []

    def take(kind, gen, once_per_table=True):
        n = 0
        used = set()
        for args in gen:
            if n >= per_kind:
                return
            if once_per_table and args[1] in used:
                continue
            text, hints, summary = args[2](*args[3:])
            if text and text != s.text:
                out.append((kind, args[1], text, hints, summary))
                used.add(args[1])
                n += 1

    def tables(pool=None):
        return pool or top

    if "add_nullable" in kinds:
        take("add_nullable", ((None, t, m_add_nullable, s, t, rnd) for t in tables()))
    if "add_notnull_default" in kinds:
        take("add_notnull_default", ((None, t, m_add_notnull_default, s, t, rnd) for t in tables()))
    if "set_not_null" in kinds:
        take(
            "set_not_null",
            ((None, t, m_set_not_null, s, t, rnd, c) for t in tables() for c in nullable_cols(s, t)[:1]),
        )
    if "change_type" in kinds:
        gens = []
        for old, new in TYPE_CHANGES:
            for t in ranked:
                for c in s.tables[t]["columns"]:
                    dt = c["data_type"]
                    if c.get("generated") or c.get("identity"):
                        continue
                    o = old.rstrip("(")
                    if dt == o or (old.endswith("(") and dt.startswith(o)):
                        gens.append((None, t, m_change_type, s, t, rnd, c, old, new))
        rnd.shuffle(gens)
        # spread over the kinds of change: round-robin by (old, new)
        by = {}
        for g in gens:
            by.setdefault((g[7], g[8]), []).append(g)
        rr = []
        while any(by.values()):
            for k in list(by):
                if by[k]:
                    rr.append(by[k].pop(0))
        take("change_type", iter(rr), once_per_table=False)
    if "change_type_referenced" in kinds:
        # The columns other objects hang on: a key that foreign keys point at, a foreign key
        # column, a column a view reads.
        gens = []
        for t in ranked:
            pk = s.pk(t) or []
            view_text = " ".join(
                d.get("definition", "") for d in s.m["views"].values() if re.search(name_re(t), d.get("definition", ""))
            )
            fkcols = {
                c["kind"]["columns"][0]
                for c in s.tables[t]["constraints"].values()
                if c["kind"]["type"] == "foreign_key" and len(c["kind"]["columns"]) == 1
            }
            for c in s.tables[t]["columns"]:
                if c.get("generated") or c.get("identity"):
                    continue
                referenced = (c["name"] in pk and s.fk_in.get(t)) or c["name"] in fkcols or (
                    view_text and re.search(r"\b" + re.escape(c["name"]) + r"\b", view_text)
                )
                if not referenced:
                    continue
                for old, new in TYPE_CHANGES:
                    o = old.rstrip("(")
                    if c["data_type"] == o or (old.endswith("(") and c["data_type"].startswith(o)):
                        if new.startswith("character varying") or (old, new) == ("integer", "text"):
                            continue  # needs a transform hint: blocked by design
                        gens.append((None, t, m_change_type, s, t, rnd, c, old, new))
                        break
        take("change_type_referenced", iter(gens))
    if "rename_column" in kinds:
        take(
            "rename_column",
            (
                (None, t, m_rename_column, s, t, rnd, c)
                for t in tables()
                for c in s.tables[t]["columns"]
                if c["name"] not in ("id",) and len(c["name"]) > 3
            ),
        )
    if "drop_column" in kinds:
        take(
            "drop_column",
            ((None, t, m_drop_column, s, t, rnd, c) for t in tables() for c in s.tables[t]["columns"][1:]),
        )
    if "add_index" in kinds:
        take(
            "add_index",
            ((None, t, m_add_index, s, t, rnd, s.tables[t]["columns"][-1], False) for t in tables()),
        )
    if "add_unique_index" in kinds:
        take(
            "add_unique_index",
            ((None, t, m_add_index, s, t, rnd, s.tables[t]["columns"][-1], True) for t in tables()),
        )
    if "add_partial_index" in kinds:
        take(
            "add_partial_index",
            ((None, t, m_add_partial_index, s, t, rnd, s.tables[t]["columns"][-1]) for t in tables()),
        )
    if "add_fk" in kinds:
        gens = []
        for t in ranked:
            have = {
                tuple(c["kind"]["columns"])
                for c in s.tables[t]["constraints"].values()
                if c["kind"]["type"] == "foreign_key"
            }
            for c in s.tables[t]["columns"]:
                if not c["name"].endswith("_id") or (c["name"],) in have:
                    continue
                stem = c["name"][:-3]
                for ref in (f"public.{stem}s", f"public.{stem}es", f"public.{stem}"):
                    if ref in s.tables and s.pk(ref) and len(s.pk(ref)) == 1:
                        rc = s.pk(ref)[0]
                        rtype = next(x["data_type"] for x in s.tables[ref]["columns"] if x["name"] == rc)
                        if rtype == c["data_type"]:
                            gens.append((None, t, m_add_fk, s, t, rnd, c, ref, rc))
                        break
        take("add_fk", iter(gens))
    if "add_check" in kinds:
        take(
            "add_check",
            ((None, t, m_add_check, s, t, rnd, s.tables[t]["columns"][-1]) for t in tables()),
        )
    if "rename_table" in kinds:
        take("rename_table", ((None, t, m_rename_table, s, t, rnd) for t in tables()))
    if "drop_default" in kinds:
        take(
            "drop_default",
            (
                (None, t, m_drop_default, s, t, rnd, c)
                for t in tables()
                for c in s.tables[t]["columns"]
                if c.get("default") and "nextval" not in c["default"]
            ),
        )
    return out


# ---------------------------------------------------------------- running


def toml_hints(h):
    lines = []
    for r in h.get("rename", []):
        lines.append("[[rename]]")
        for k in ("table", "from", "to"):
            if k in r:
                lines.append(f'{k} = "{r[k]}"')
        lines.append("")
    for f in h.get("fill", []):
        value = f["value"].replace("\\", "\\\\").replace('"', '\\"')
        lines += ["[[fill]]", f'table = "{f["table"]}"', f'column = "{f["column"]}"', f'value = "{value}"', ""]
    if "plan" in h:
        lines.append("[plan]")
        ao = ", ".join(f'"{x}"' for x in h["plan"]["allow_one_way"])
        lines.append(f"allow_one_way = [{ao}]")
    return "\n".join(lines) + "\n"


def run(cmd, timeout):
    t0 = time.time()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout, p.stderr, time.time() - t0
    except subprocess.TimeoutExpired as e:
        return 124, e.stdout or "", (e.stderr or "") + "\n(timeout)", time.time() - t0


def classify(pc, plan_out, plan_err, rc, reh_out, reh_err):
    if "panicked" in plan_err or "panicked" in reh_err:
        return "BUG-crash"
    if pc == 2:
        return "BUG-crash"
    if pc == 1:
        try:
            findings = json.loads(plan_out)["findings"]
        except Exception:
            return "BUG-crash"
        errs = [f for f in findings if f["severity"] == "error"]
        if any(not f.get("object") for f in errs):
            return "BUG-unnamed"
        return "blocked"
    if rc == 0:
        return "ok"
    if rc == 2:
        return "invalid"
    if warned_trigger_only(plan_out, reh_out + reh_err):
        return "warned"
    return "BUG-rehearse"


def warned_trigger_only(plan_out, rehearse_text):
    """The rehearsal's only problem is data a rollback of backfill did not restore, on tables
    whose own UPDATE trigger the plan warned fires for every backfilled row
    (backfill-fires-trigger: documented, the rollback cannot undo what the trigger did)."""
    try:
        findings = json.loads(plan_out)["findings"]
    except Exception:
        return False
    warned = set()
    for f in findings:
        m = re.search(r"backfill of (\S+) writes", f["message"]) if f["code"] == "backfill-fires-trigger" else None
        if m:
            warned.add(m.group(1).rsplit(".", 1)[0])
    problems = re.findall(r"^error: .*$", rehearse_text, re.M)
    changed = re.findall(r"rolling back backfill did not restore the database: data of (\S+) changed", rehearse_text)
    return bool(changed) and len(problems) == 1 and all(t in warned for t in changed)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--seqmig", default="target/debug/seqmig")
    ap.add_argument("--database-url", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--per-kind", type=int, default=6)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--kinds", default="")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rows", type=int, default=20)
    ap.add_argument("--no-rehearse", action="store_true")
    a = ap.parse_args()

    all_kinds = [
        "add_nullable", "add_notnull_default", "set_not_null", "change_type", "rename_column",
        "drop_column", "add_index", "add_unique_index", "add_partial_index", "add_fk",
        "add_check", "rename_table", "drop_default", "change_type_referenced",
    ]
    kinds = a.kinds.split(",") if a.kinds else all_kinds
    os.makedirs(a.out, exist_ok=True)
    text = open(a.corpus).read()
    if "uuidv7()" in text or "VIRTUAL" in text or "EXTENSION IF NOT EXISTS vector" in text:
        text = pg15_compatible(text)
    base = os.path.join(a.out, "from.sql")
    open(base, "w").write(text)
    pc, out, err, _ = run([a.seqmig, "inspect", base, "--format", "json"], 120)
    if pc != 0:
        sys.exit(f"inspect failed: {err}")
    s = Schema(json.loads(out), text)
    rnd = random.Random(a.seed)
    muts = generate(s, rnd, a.per_kind, kinds)
    if a.limit:
        muts = muts[: a.limit]
    summary = open(os.path.join(a.out, "summary.tsv"), "w")
    summary.write("n\tkind\ttable\tclass\tplan_rc\trehearse_rc\tfindings\tsummary\tproblem\n")
    counts = {}
    for n, (kind, table, mtext, hints, desc) in enumerate(muts):
        d = os.path.join(a.out, f"{n:03d}-{kind}")
        os.makedirs(d, exist_ok=True)
        to = os.path.join(d, "to.sql")
        open(to, "w").write(mtext)
        cfg = os.path.join(d, "seqmig.toml")
        open(cfg, "w").write(toml_hints(hints))
        pc, pout, perr, _ = run(
            [a.seqmig, "plan", "--from", base, "--to", to, "--config", cfg, "--format", "json"], 300
        )
        open(os.path.join(d, "plan.json"), "w").write(pout)
        open(os.path.join(d, "plan.stderr"), "w").write(perr)
        rc, rout, rerr = None, "", ""
        if pc == 0 and not a.no_rehearse:
            rc, rout, rerr, secs = run(
                [a.seqmig, "rehearse", "--from", base, "--to", to, "--config", cfg,
                 "--database-url", a.database_url, "--rows", str(a.rows)],
                600,
            )
            open(os.path.join(d, "rehearse.txt"), "w").write(rout + "\n--- stderr\n" + rerr)
        cls = classify(pc, pout, perr, rc if rc is not None else 0, rout, rerr)
        codes = ""
        try:
            codes = ",".join(
                sorted({f"{f['code']}@{f.get('object', '')}" for f in json.loads(pout)["findings"] if f["severity"] == "error"})
            )
        except Exception:
            pass
        problem = ""
        for line in (rout + "\n" + rerr + "\n" + perr).splitlines():
            if line.startswith("error") or "panicked" in line:
                problem = line.strip()[:300]
                break
        counts[cls] = counts.get(cls, 0) + 1
        row = [str(n), kind, table, cls, str(pc), "" if rc is None else str(rc), codes, desc.replace("\n", " "), problem]
        summary.write("\t".join(x.replace("\t", " ") for x in row) + "\n")
        summary.flush()
        print(f"{n:3d} {cls:13s} {kind:20s} {table:40s} {desc[:60]!r} {problem[:160]}", flush=True)
    print("counts:", json.dumps(counts, sort_keys=True))


if __name__ == "__main__":
    main()
