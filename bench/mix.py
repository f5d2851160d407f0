#!/usr/bin/env python3
"""Realistic-mix benchmark: shape_router with the shape forms sync and realtime
users write, against PostgreSQL's decoding floor over the same WAL.

The mix, per 100 shapes (each k, t, a drawn per shape; the proportions and why
are in bench/README.md, "Realistic mix"):
  40  tenant_id = k                                       per-tenant equality
  15  status = 'open' AND assignee_id = k                 AND of two equalities, low-cardinality first
  10  project_id IN (k, k + 1, k + 2)                     IN list
  10  owner_id = k OR assignee_id = k                     OR of equalities ("mine")
  10  project_id = k AND priority >= t                    equality + threshold
   5  tenant_id = k AND status IN ('open', 'review')      equality + IN
   5  score > t                                           one-sided threshold (t in the top 0.00002%: rarely met)
   5  amount BETWEEN a AND a + 99                         two-sided range
and, at the largest S once more, with 100 shapes no cover reaches (an IS TRUE
test of a comparison, `((amount + priority) % 1000003 < k) IS TRUE`): scan
shapes, what the covers still leave to the program.

Shape sets S = 10,000, 100,000 and 1,000,000 are prefixes of one registration
(each prefix has the same mix), selected with the plugin's `shapes` option. Key
values of rows and shapes are drawn from 1..100 × 1,000,000, so that about 1% of
changes match some shape at S = 1,000,000 (fewer at smaller S). Last, the shapes
outside the largest set are dropped and a slot without the `shapes` option is read
from new backends: the start of a consumer of every shape, with the catalog in
shared buffers and after a restart. --large-pages runs the server with huge_pages =
on and glibc's malloc on transparent huge pages.

  python3 bench/mix.py                 # default: 200,000 changes, S up to 1,000,000; writes bench/MIX.md
  python3 bench/mix.py --quick         # small, for CI: checks the harness works

--forms ii swaps in the mix of the second cover issue (FORMS_II below, per
10,000 shapes): the first mix scaled to 70%, then arrays, LIKE prefixes,
negations, IS [NOT] NULL conjuncts, one shape in 10,000 without WHERE, and 1%
shapes once opaque (ILIKE '%..%', an anchored regex and arithmetic `expr = k`,
now substring, prefix and expression atoms). The table gains `env int` and
`tags text[]`, rows get NULL assignees and titles and an 'archived' status.
--opaque N also reads the same WAL with only N (and N/10) `title ILIKE
'%<word>%'` shapes: the per-change cost of substring search shapes. Either writes bench/MIX16.md (never bench/MIX.md); --max-shapes 0 runs
--opaque alone.

  python3 bench/mix.py --forms ii --opaque 1000 --max-shapes 10000 --changes 20000

--lane N also reads the same WAL with only N (and N/10) shapes `owner_id = k OR
owner_id < assignee_id`: no cover (a column against a column), no executor part,
one form: the form lane's per-change cost per scan shape.

  python3 bench/mix.py --max-shapes 0 --lane 10000 --changes 200000 --out /tmp/lane.md

--expressions N also reads the same WAL with only N (and N/10) shapes
`(amount + priority) % N = k` (k = 0 .. N - 1): expression atoms, one shape
of the N matches each row version; exact, so decided without the executor.
And with only N (and N/10) shapes `substr(title, 1, 3) = 'xyz'` (the 4,096
three-hex-digit prefixes in turn): text keys are hashes, so a hit runs the
shape's program, whose test of the expression reuses the decoder's value.

  python3 bench/mix.py --max-shapes 0 --expressions 10000 --changes 200000 --out /tmp/expr.md
Run as root (the cluster runs as the postgres user).
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import c_version, consume, log, run_on_cluster  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
KEYS = 100_000_000  # key values of rows and shapes: 1..KEYS
MEMORY_BASELINE = "shape_router, no shape, same-length `shapes` option (memory baseline)"

# (weight, form, SQL producing the clause from g (the shape's ordinal) and random keys)
FORMS = [
    (40, "tenant_id = k", "format('tenant_id = %s', k1)"),
    (15, "status = 'open' AND assignee_id = k", "format('status = ''open'' AND assignee_id = %s', k1)"),
    (10, "project_id IN (k, k+1, k+2)", "format('project_id IN (%s, %s, %s)', k1, k1 + 1, k1 + 2)"),
    (10, "owner_id = k OR assignee_id = k", "format('owner_id = %s OR assignee_id = %s', k1, k1)"),
    (10, "project_id = k AND priority >= t", "format('project_id = %s AND priority >= %s', k1, t)"),
    (5, "tenant_id = k AND status IN ('open', 'review')",
     "format('tenant_id = %s AND status IN (''open'', ''review'')', k1)"),
    (5, "score > t (t in the top 0.00002%)", "format('score > %s', 999999.8 + round((random() * 0.2)::numeric, 3))"),
    (5, "amount BETWEEN a AND a + 99", "format('amount BETWEEN %s AND %s', a, a + 99)"),
]

# --forms ii, per 10,000 shapes (why these weights: FORMS_II_WHY). k1, k2 keys,
# tag a random tag, pfx 6 hex digits, w 7 hex digits; NULL: a shape without WHERE.
FORMS_II = [
    (2800, "tenant_id = k", "format('tenant_id = %s', k1)"),
    (1050, "status = 'open' AND assignee_id = k", "format('status = ''open'' AND assignee_id = %s', k1)"),
    (700, "project_id IN (k, k+1, k+2)", "format('project_id IN (%s, %s, %s)', k1, k1 + 1, k1 + 2)"),
    (700, "owner_id = k OR assignee_id = k", "format('owner_id = %s OR assignee_id = %s', k1, k1)"),
    (700, "project_id = k AND priority >= t", "format('project_id = %s AND priority >= %s', k1, t)"),
    (350, "tenant_id = k AND status IN ('open', 'review')",
     "format('tenant_id = %s AND status IN (''open'', ''review'')', k1)"),
    (350, "score > t (t in the top 0.00002%)", "format('score > %s', 999999.8 + round((random() * 0.2)::numeric, 3))"),
    (350, "amount BETWEEN a AND a + 99", "format('amount BETWEEN %s AND %s', a, a + 99)"),
    # arrays
    (500, "env = E AND tags @> ARRAY['t']", "format('env = %s AND tags @> ARRAY[%L]', k1, tag)"),
    (200, "'t' = ANY(tags)", "format('%L = ANY (tags)', tag)"),
    # prefixes
    (500, "title LIKE 'abcdef%' (6 hex digits)", "format('title LIKE %L', pfx || '%')"),
    # negations
    (700, "status <> 'archived' AND owner_id = k", "format('status <> ''archived'' AND owner_id = %s', k1)"),
    (300, "owner_id = k AND status NOT IN ('archived', 'done')",
     "format('owner_id = %s AND status NOT IN (''archived'', ''done'')', k1)"),
    (200, "project_id = k AND assignee_id IS DISTINCT FROM k2",
     "format('project_id = %s AND assignee_id IS DISTINCT FROM %s', k1, k2)"),
    # IS [NOT] NULL conjuncts
    (300, "project_id = k AND assignee_id IS NULL", "format('project_id = %s AND assignee_id IS NULL', k1)"),
    (199, "owner_id = k AND title IS NOT NULL", "format('owner_id = %s AND title IS NOT NULL', k1)"),
    # no WHERE: every change of the table
    (1, "no WHERE", "NULL"),
    # once opaque: ILIKE, the anchored regex and expr = k now have covers (substring, prefix, expression)
    (100, "opaque: title ILIKE '%w%', title ~ regex, (amount + priority) % 100000007 = k (w: 7 hex digits)",
     "(ARRAY[format('title ILIKE %L', '%' || w || '%'), format('title ~ %L', '^' || w || '[0-9]'), "
     "format('(amount + priority) %% 100000007 = %s', k1 % 100000007)])[1 + g % 3]"),
]
FORMS_II_WHY = (
    "70% keeps the first mix's forms in their proportions (equalities, INs, ORs, thresholds and ranges are still what "
    "most shapes are). Negations (12%) come next: soft-delete and archive filters (`status <> 'archived' AND owner_id "
    "= k`) sit on most per-user shapes of apps that archive. Arrays (7%) are tag and label filters, usually scoped to "
    "an environment or tenant (`env = E AND tags @> ...`), sometimes alone. Prefixes (5%) are path and "
    "search-as-you-type shapes. IS [NOT] NULL conjuncts (5%) are unassigned and not-deleted filters. A shape without "
    "WHERE on a large table is rare (every change goes to it): 1 in 10,000. 1% are truly opaque (substring search, "
    "regexes, arithmetic): what a template lane would have to take.")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--changes", type=int, default=200_000)
    ap.add_argument("--max-shapes", type=int, default=1_000_000)
    ap.add_argument("--reps", type=int, default=3, help="repetitions per consumer (median reported)")
    ap.add_argument("--quick", action="store_true", help="small sizes for CI")
    ap.add_argument("--port", type=int, default=54392)
    ap.add_argument("--out", default=os.path.join(HERE, "MIX.md"))
    ap.add_argument("--keep", action="store_true", help="keep the cluster directory")
    ap.add_argument("--large-pages", action="store_true",
                    help="run the cluster with huge_pages = on and glibc's malloc on transparent huge pages")
    ap.add_argument("--shards", type=int, default=3,
                    help="also run the largest set as this many `shard` slots (0: not)")
    ap.add_argument("--forms", choices=["i", "ii"], default="i",
                    help="i: the first mix (default); ii: with the second cover issue's forms (writes MIX16.md)")
    ap.add_argument("--without-whole-table", action="store_true",
                    help="--forms ii: leave the no-WHERE shapes out of every set (each emits a record a change)")
    ap.add_argument("--opaque", type=int, default=0,
                    help="also read the WAL with only N (and N/10) opaque title ILIKE shapes (writes MIX16.md)")
    ap.add_argument("--lane", type=int, default=0,
                    help="also read the WAL with only N (and N/10) scan shapes of one form "
                         "(owner_id = k OR owner_id = assignee_id)")
    ap.add_argument("--expressions", type=int, default=0,
                    help="also read the WAL with only N (and N/10) shapes (amount + priority) %% N = k")
    a = ap.parse_args()
    if a.max_shapes != 0 and a.max_shapes < 10_000:
        ap.error("--max-shapes is 0 (only --opaque or --lane) or at least 10,000")
    if a.max_shapes == 0 and a.opaque <= 0 and a.lane <= 0 and a.expressions <= 0:
        ap.error("--max-shapes 0 needs --opaque N, --lane N or --expressions N")
    if (a.forms == "ii" or a.opaque > 0) and a.out == os.path.join(HERE, "MIX.md"):
        a.out = os.path.join(HERE, "MIX16.md")
    if a.quick:
        a.changes, a.reps = 10_000, 1
        a.max_shapes = min(a.max_shapes, 10_000)
        a.opaque = min(a.opaque, 100)
        if a.out in (os.path.join(HERE, "MIX.md"), os.path.join(HERE, "MIX16.md")):
            a.out = os.path.join(tempfile.gettempdir(), "shape_router_mix_quick.md")
    run_on_cluster(a, run, write)


def shape_sets(max_shapes):
    return [s for s in (10_000, 100_000, 1_000_000) if s <= max_shapes]


def opaque_name(n):
    return f"shape_router, {n:,} opaque `title ILIKE '%w%'` shapes only"


def lane_name(n):
    return f"shape_router, {n:,} scan shapes `owner_id = k OR owner_id = assignee_id` only"


def expression_name(n, modulus):
    return f"shape_router, {n:,} shapes `(amount + priority) % {modulus:,} = k` only"


def text_expression_name(n):
    return f"shape_router, {n:,} shapes `substr(title, 1, 3) = 'xyz'` only"


def shard_name(s, i, n):
    return f"shape_router, S = {s:,} (mix), shard {i}/{n}"


def run(c, a):
    r = {"consumers": {}, "facts": {}}
    c.psql("CREATE EXTENSION shape_router", "CREATE EXTENSION sr_bench")
    ii = a.forms == "ii"
    c.psql("""CREATE TABLE items (id bigserial PRIMARY KEY, tenant_id int NOT NULL, owner_id int, assignee_id int,
              status text NOT NULL, project_id int, priority int, score float8, amount bigint, title text""" +
           (", env int, tags text[])" if ii else ")"),
           "ALTER TABLE items REPLICA IDENTITY FULL")
    # One clause per shape ordinal g: form by g's position in a cycle of 100
    # (10,000 for --forms ii), so that every prefix of the registration holds the mix.
    cases = []
    position = 0
    cycle = 10_000 if ii else 100
    for weight, _, sql in (FORMS_II if ii else FORMS):
        cases.append(f"WHEN g % {cycle} < {position + weight} THEN {sql}")
        position += weight
    assert position == cycle
    extra_keys = (f", 1 + floor(random() * {KEYS})::int AS k2, 't' || (1 + floor(random() * {KEYS})::int) AS tag, "
                  f"substr(md5(random()::text), 1, 6) AS pfx, substr(md5(random()::text), 1, 7) AS w" if ii else "")
    clause_sql = (f"SELECT array_agg(CASE {' '.join(cases)} END ORDER BY g) FROM ("
                  f"SELECT g, 1 + floor(random() * {KEYS})::int AS k1, floor(random() * 10)::int AS t, "
                  f"floor(random() * 1000000000)::bigint AS a{extra_keys} FROM generate_series(__LO__, __HI__) g) s")
    # The clauses are made first, and only their registration is timed.
    chunk = 100_000
    c.psql("CREATE UNLOGGED TABLE mix_clauses (lo int PRIMARY KEY, clauses text[])")
    for lo in range(0, a.max_shapes, chunk):
        hi = min(lo + chunk, a.max_shapes) - 1
        # seeded in the same session: every run (and build) registers the same shapes
        c.psql(f"SELECT setseed({lo / a.max_shapes / 2:.6f})",
               f"INSERT INTO mix_clauses VALUES ({lo}, ({clause_sql.replace('__LO__', str(lo)).replace('__HI__', str(hi))}))")
    t0 = time.time()
    for lo in range(0, a.max_shapes, chunk):
        c.psql(f"SELECT count(*) FROM shape_router.register_shapes('items', (SELECT clauses FROM mix_clauses WHERE lo = {lo}))")
    reg_seconds = time.time() - t0
    c.psql("DROP TABLE mix_clauses")
    r["facts"]["registration_rate"] = a.max_shapes / reg_seconds if reg_seconds > 0 else 0
    opaque_ids = []
    if a.opaque > 0:
        # words of 4 hex digits: a title (32 hex digits) holds a given one about once in 2,300 rows
        opaque_ids = c.psql("SELECT id FROM shape_router.register_shapes('items', (SELECT array_agg(format("
                            "'title ILIKE %L', '%' || substr(md5('w' || g), 1, 4) || '%') ORDER BY g) "
                            f"FROM generate_series(1, {a.opaque}) g)) id")
    lane_ids = []
    if a.lane > 0:
        lane_ids = c.psql("SELECT id FROM shape_router.register_shapes('items', (SELECT array_agg(format("
                          f"'owner_id = %s OR owner_id = assignee_id', 1 + floor(random() * {KEYS})::int) ORDER BY g) "
                          f"FROM generate_series(1, {a.lane}) g)) id")
    expression_ids = []
    text_expression_ids = []
    if a.expressions > 0:
        expression_ids = c.psql("SELECT id FROM shape_router.register_shapes('items', (SELECT array_agg(format("
                                f"'(amount + priority) %% {a.expressions} = %s', g) ORDER BY g) "
                                f"FROM generate_series(0, {a.expressions - 1}) g)) id")
        text_expression_ids = c.psql("SELECT id FROM shape_router.register_shapes('items', (SELECT array_agg(format("
                                     "'substr(title, 1, 3) = %L', lpad(to_hex(g % 4096), 3, '0')) ORDER BY g) "
                                     f"FROM generate_series(0, {a.expressions - 1}) g)) id")
    scan_ids = c.psql("SELECT string_agg(id::text, ',') FROM shape_router.register_shapes('items', "
                      "(SELECT array_agg(format('((amount + priority) %% 1000003 < %s) IS TRUE', g)) FROM generate_series(1, 100) g)) id")[0]
    c.psql("VACUUM ANALYZE shape_router.shape_catalog")
    first_id = int(c.psql("SELECT min(shape_id) FROM shape_router.shapes")[0])
    # Scan shapes in the catalog (builds before covers kept one index column, index_attnum).
    column = c.psql("SELECT attname FROM pg_attribute WHERE attrelid = 'shape_router.shape_catalog'::regclass "
                    "AND attname IN ('index_cover', 'index_attnum')")[0]
    r["facts"]["scan_forms"] = int(c.psql(f"SELECT count(*) FROM shape_router.shape_catalog WHERE {column} IS NULL")[0])
    if ii and a.max_shapes > 0:
        # scan shapes of each form of the mix, as the catalog says today
        r["facts"]["scan_by_form"] = {}
        for i, (weight, form, _) in enumerate(FORMS_II):
            lo = sum(w for w, _, _ in FORMS_II[:i])
            r["facts"]["scan_by_form"][form] = c.psql(
                f"SELECT count(*) FILTER (WHERE {column} IS NULL) || '/' || count(*) FROM shape_router.shape_catalog "
                f"WHERE shape_id - {first_id} < {a.max_shapes} AND (shape_id - {first_id}) % 10000 >= {lo} "
                f"AND (shape_id - {first_id}) % 10000 < {lo + weight}")[0]

    consumers = [("floor (no-op plugin)", "sr_bench", [])]
    # The no-WHERE form's place in each 10,000 (--without-whole-table leaves it out).
    whole = next(((sum(w for w, _, _ in FORMS_II[:i]), wt) for i, (wt, form, _) in enumerate(FORMS_II)
                  if form == "no WHERE"), (0, 0)) if ii and a.without_whole_table else (0, 0)
    for s in shape_sets(a.max_shapes):
        subset = ",".join(f"{first_id + k:010d}" for k in range(s)
                          if not whole[0] <= k % 10000 < whole[0] + whole[1])
        consumers.append((f"shape_router, S = {s:,} (mix)", "shape_router", ["shapes", subset]))
    if a.max_shapes > 0:
        # The memory baseline: no shape, but an option as long as the largest set's
        # (ids that do not exist), so the difference in peak memory is the shapes alone.
        consumers.append((MEMORY_BASELINE, "shape_router",
                          ["shapes", ",".join(f"{9_000_000_000 + k:010d}" for k in range(s))]))
        # The largest set again with the 100 shapes no cover reaches: what still scans.
        consumers.append((f"shape_router, S = {s:,} (mix) + 100 scan shapes", "shape_router",
                          ["shapes", subset + "," + scan_ids]))
        # The largest set split over `shard` slots: each loads, indexes and routes its share,
        # and together they emit the unsharded stream.
        for i in range(a.shards):
            consumers.append((shard_name(s, i, a.shards), "shape_router",
                              ["shapes", subset, "shard", f"{i}/{a.shards}"]))
    # Only opaque shapes, N and N/10 of them: the cost a change pays per shape no cover reaches.
    for n in sorted({a.opaque, a.opaque // 10} - {0}):
        consumers.append((opaque_name(n), "shape_router", ["shapes", ",".join(opaque_ids[:n])]))
    # Only scan shapes of one form, N and N/10 of them: what a lane costs a change per shape.
    for n in sorted({a.lane, a.lane // 10} - {0}):
        consumers.append((lane_name(n), "shape_router", ["shapes", ",".join(lane_ids[:n])]))
    # Only expression shapes, all N of one modulus and the first N/10.
    for n in sorted({a.expressions, a.expressions // 10} - {0}):
        consumers.append((expression_name(n, a.expressions), "shape_router", ["shapes", ",".join(expression_ids[:n])]))
        consumers.append((text_expression_name(n), "shape_router", ["shapes", ",".join(text_expression_ids[:n])]))
    slot_of = {}
    for i, (name, plugin, _) in enumerate(consumers):
        slot_of[name] = f"m{i}"
        c.psql(f"SELECT 'x' FROM pg_create_logical_replication_slot('m{i}', '{plugin}')")
    c.psql("INSERT INTO items (tenant_id, status) VALUES (0, 'start marker')")

    # Transactions of 100 changes: 70 inserts, 20 updates (assignee, status,
    # priority, score), 10 deletes.
    log(f"workload: {a.changes:,} changes")
    t0 = time.time()
    if ii:
        # the same shape of workload, with the columns and values the second mix reads
        insert_cols = "tenant_id, owner_id, assignee_id, status, project_id, priority, score, amount, title, env, tags"
        insert_vals = (f"1 + floor(random() * {KEYS})::int, 1 + floor(random() * {KEYS})::int, "
                       f"CASE WHEN random() < 0.1 THEN NULL ELSE 1 + floor(random() * {KEYS})::int END, "
                       f"(ARRAY['open','done','review','archived'])[1 + floor(random() * 4)::int], "
                       f"1 + floor(random() * {KEYS})::int, floor(random() * 10)::int, random() * 1000000, "
                       f"floor(random() * 1000000000)::bigint, CASE WHEN random() < 0.05 THEN NULL ELSE md5(random()::text) END, "
                       f"1 + floor(random() * {KEYS})::int, "
                       f"(SELECT array_agg('t' || (1 + floor(random() * {KEYS})::int)) FROM generate_series(0, (g * 0) + floor(random() * 3)::int))")
        update_sets = (f"assignee_id = CASE WHEN random() < 0.1 THEN NULL ELSE 1 + floor(random() * {KEYS})::int END, "
                       f"status = (ARRAY['open','archived'])[1 + floor(random() * 2)::int], "
                       f"priority = (priority + 1) % 10, score = random() * 1000000")
    else:
        insert_cols = "tenant_id, owner_id, assignee_id, status, project_id, priority, score, amount, title"
        insert_vals = (f"1 + floor(random() * {KEYS})::int, 1 + floor(random() * {KEYS})::int,\n"
                       f"                   1 + floor(random() * {KEYS})::int, (ARRAY['open','done','review'])[1 + floor(random() * 3)::int],\n"
                       f"                   1 + floor(random() * {KEYS})::int, floor(random() * 10)::int, random() * 1000000,\n"
                       f"                   floor(random() * 1000000000)::bigint, md5(random()::text)")
        update_sets = (f"assignee_id = 1 + floor(random() * {KEYS})::int, status = 'open',\n"
                       f"                 priority = (priority + 1) % 10, score = random() * 1000000")
    c.psql(f"""CREATE PROCEDURE workload(n_txn int) LANGUAGE plpgsql AS $$
      DECLARE base bigint;
      BEGIN
        PERFORM setseed(0.42);
        FOR t IN 1..n_txn LOOP
          INSERT INTO items ({insert_cols})
            SELECT {insert_vals}
              FROM generate_series(1, 70) g;
          base := currval('items_id_seq') - 70;
          UPDATE items SET {update_sets}
           WHERE id > base AND id <= base + 20;
          DELETE FROM items WHERE id > base + 20 AND id <= base + 30;
          COMMIT;
        END LOOP;
      END $$""")
    c.psql(f"CALL workload({a.changes // 100})")
    r["facts"]["workload_seconds"] = time.time() - t0
    r["facts"]["changes"] = a.changes

    # Rounds: every consumer read once a round, so that a slow spell of the
    # (shared) machine falls on all consumers of a round, not on all reads of
    # one, and a round's routing can be compared with the same round's floor.
    # Start and routing are taken inside the read, by the plugin, the same way for
    # shape_router (decoding_stats) and the floor (bench_floor_stats): start_cpu_us
    # from the decoding session's start to its first change (for shape_router,
    # until that change could be routed: shapes loaded, index built),
    # session_cpu_us the whole session. Routing is the difference: what decoding
    # and routing the changes cost, without the statement's own parsing of the
    # `shapes` option (11 MB at a million shapes) before the session starts.
    floor_stats = "SELECT row_to_json(s) FROM bench_floor_stats() s"
    samples = {name: [] for name, _, _ in consumers}
    starts = {name: [] for name, _, _ in consumers}
    routings = {name: [] for name, _, _ in consumers}
    for rep in range(a.reps):
        for name, plugin, opts in consumers:
            x = consume(c, slot_of[name], "text", opts, plugin == "shape_router",
                        stats_sql=None if plugin == "shape_router" else floor_stats)
            samples[name].append(x)
            stats = json.loads(x["stats"])
            if stats.get("start_cpu_us") is None or stats.get("session_cpu_us") is None:
                raise SystemExit(f"{name}: no start_cpu_us or session_cpu_us from the plugin "
                                 "(a library older than this harness, or no change decoded)")
            starts[name].append(stats["start_cpu_us"])
            routings[name].append(stats["session_cpu_us"] - stats["start_cpu_us"])
        log(f"round {rep + 1} of {a.reps} done")
    # Memory of the shapes alone: reads of the first transaction only (its one
    # change loads the shapes and builds the index). A full read's peak also holds
    # what the SQL function returns, records the baseline never has.
    loads = {name: [] for name, _, _ in consumers}
    for rep in range(a.reps):
        for name, plugin, opts in consumers:
            if plugin == "shape_router":
                loads[name].append(consume(c, slot_of[name], "text", opts, True, nchanges=1)["anon_peak_kb"])
    log("load reads done")
    # The changes some shape wants: one more read of each shape_router consumer
    # (untimed), counting the distinct changes (LSNs) its records are of.
    matched = {}
    for name, plugin, opts in consumers:
        if plugin != "shape_router":
            continue
        opt_sql = "".join(f", '{o}'" for o in opts)
        matched[name] = int(c.psql(
            f"SELECT count(DISTINCT lsn) FROM pg_logical_slot_peek_changes('{slot_of[name]}', NULL, NULL{opt_sql}) "
            "WHERE data NOT LIKE '{\"op\":\"begin\"%' AND data NOT LIKE '{\"op\":\"commit\"%'")[0])
    log("matching reads done")
    for name, _, _ in consumers:
        cpu = [x["cpu_us"] for x in samples[name]]
        best = sorted(samples[name], key=lambda x: x["cpu_us"])[len(cpu) // 2]
        best["cpu_median_us"] = statistics.median(cpu)
        best["cpu_min_us"], best["cpu_max_us"] = min(cpu), max(cpu)
        best["start_cpu_us"] = statistics.median(starts[name])
        best["routing_us"] = statistics.median(routings[name])
        best["rounds"] = routings[name]
        best["private_kb"] = statistics.median(x["anon_peak_kb"] for x in samples[name])
        best["load_private_kb"] = statistics.median(loads[name]) if loads[name] else 0
        if name in matched:
            best["changes_matched"] = matched[name]
        r["consumers"][name] = best
        log(f"{name}: {best['cpu_median_us'] / 1e6:.2f} s CPU (start {best['start_cpu_us'] / 1e6:.2f} s), "
            f"{best['messages']:,} messages, peak private {best['private_kb'] / 1024:.0f} MB "
            f"(loaded {best['load_private_kb'] / 1024:.0f} MB), "
            f"peak RSS {best['rss_kb'] / 1024:.0f} MB")
    if a.max_shapes > 0:
        r["whole_catalog"] = whole_catalog_start(c, a, first_id)
    return r


def whole_catalog_start(c, a, first_id):
    """The start as a consumer of every shape sees it: a catalog of exactly the
    largest set, a slot without the `shapes` option, read from a new backend
    (the other consumers list their shapes in an 11 MB option, which the server
    also parses and writes to its log with the statement). Twice: with the
    catalog in shared buffers (as after registration, or on a busy server), and
    after a restart, when a catalog over a quarter of shared buffers is read
    through a small ring of them."""
    largest = max(shape_sets(a.max_shapes))
    # The largest set: its first `largest` ids, less the no-WHERE shapes the sets leave out.
    outside = f"shape_id >= {first_id + largest}"
    if a.forms == "ii" and a.without_whole_table:
        outside += f" OR (shape_id < {first_id + largest} AND where_source IS NULL)"
    dropped = int(c.psql("SELECT count(*) FILTER (WHERE shape_router.drop_shape(shape_id)) "
                         f"FROM shape_router.shape_catalog WHERE {outside}")[0])
    c.psql("SELECT 'x' FROM pg_create_logical_replication_slot('whole', 'shape_router')",
           "INSERT INTO items (tenant_id, status) VALUES (0, 'start marker')")
    loaded = 0

    def reads():
        nonlocal loaded
        starts = []
        for _ in range(max(a.reps, 3)):
            out = c.psql("SELECT count(*) FROM pg_logical_slot_peek_changes('whole', NULL, 1)",
                         "SELECT start_cpu_us || ' ' || shapes_loaded FROM shape_router.decoding_stats()")
            start, loaded = (int(x) for x in out[-1].split())
            starts.append(start)
        return starts

    c.psql("CREATE EXTENSION IF NOT EXISTS pg_prewarm", "SELECT pg_prewarm('shape_router.shape_catalog')")
    starts = reads()
    c.restart()
    ring_starts = reads()
    size = int(c.psql("SELECT pg_relation_size('shape_router.shape_catalog')")[0])
    huge = c.psql("SHOW huge_pages")[0]
    log(f"whole catalog ({loaded:,} shapes): start {statistics.median(starts) / 1e6:.2f} s in shared buffers "
        f"({', '.join(f'{x / 1e6:.2f}' for x in starts)}), {statistics.median(ring_starts) / 1e6:.2f} s after a restart "
        f"({', '.join(f'{x / 1e6:.2f}' for x in ring_starts)})")
    return {"starts": starts, "ring_starts": ring_starts, "shapes": loaded, "dropped": dropped,
            "catalog_bytes": size, "huge_pages": huge}


def write(a, r, elapsed):
    cons = r["consumers"]
    floor = cons["floor (no-op plugin)"]
    floor_routing = floor["routing_us"]
    n = r["facts"]["changes"]
    commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    lines = []
    w = lines.append
    w("# Realistic-mix benchmark results")
    w("")
    w(f"Run {datetime.datetime.utcnow().strftime('%Y-%m-%d %H:%M UTC')}, commit {commit}, {os.cpu_count()} CPUs, "
      f"{platform.platform()}, PostgreSQL {c_version()}.")
    # as run, less where the table was written
    args = [x for i, x in enumerate(sys.argv[1:]) if x != "--out" and (i == 0 or sys.argv[i] != "--out")]
    w(f"Command: `python3 bench/mix.py{''.join(' ' + x for x in args)}` ({elapsed / 60:.1f} min in all).")
    w("")
    if a.max_shapes > 0 and a.forms == "ii":
        w("Shapes (per 10,000, `--forms ii`): " + "; ".join(f"{wt} `{form}`" for wt, form, _ in FORMS_II) +
          f"; the `+ 100 scan shapes` row adds 100 `((amount + priority) % 1000003 < k) IS TRUE` shapes (no cover). Why these "
          f"weights: {FORMS_II_WHY}")
        w("")
        if a.without_whole_table:
            w("`--without-whole-table`: every set leaves out its no-WHERE shapes (1 in 10,000; each would emit a record "
              "for every change, which is emission, not routing), so a set of S has S - S/10,000 shapes.")
            w("")
        w("Rows: as in the first mix, plus `env` (uniform keys) and `tags` (1–3 tags `t<key>`), 10% NULL assignees, "
          "5% NULL titles, status among open/done/review/archived (updates set open or archived).")
        w("")
        w("Of the once-opaque shapes, a third are `title ILIKE '%w%'` (substring atoms), a third anchored regexes "
          "(`title ~ '^w[0-9]'`, prefix atoms of their fixed prefix w) and a third arithmetic `expr = k` (expression "
          "atoms: the expression is evaluated once a row version). A candidate regex shape still compiles its pattern "
          "when the backend's regex cache (PostgreSQL's RE_CACHE_SIZE, 32 patterns) no longer holds it.")
        if "scan_by_form" in r["facts"]:
            w("")
            w("Scan shapes per form today (catalog `index_cover` NULL / shapes of the form): " +
              "; ".join(f"`{f}` {v}" for f, v in r["facts"]["scan_by_form"].items()) + ".")
    elif a.max_shapes > 0:
        w("Shapes (per 100): " + "; ".join(f"{wt} `{form}`" for wt, form, _ in FORMS) +
          "; the last row adds 100 `((amount + priority) % 1000003 < k) IS TRUE` shapes, which have no cover (scan shapes).")
    if a.opaque > 0:
        w(f"Opaque rows: {a.opaque:,} (and {a.opaque // 10:,}) shapes `title ILIKE '%w%'`, w 4 hex digits, alone on the "
          "slot (`shapes` option). Substring atoms index them by one gram each (here w itself): a change runs the "
          "programs of the shapes whose gram its lowered title holds (a 32-hex-digit title holds about 4 of 10,000).")
    w("")
    w(f"Workload: {n:,} changes in transactions of 100 (70 inserts, 20 updates, 10 deletes), key values uniform over "
      f"1..{KEYS:,}. CPU = user + system time of the backend running `pg_logical_slot_peek_changes`, median of "
      f"{a.reps}. Start and routing are timed inside the read by the plugin, the same way for shape_router "
      f"(`decoding_stats()`) and the floor (`bench_floor_stats()`): start CPU = `start_cpu_us`, from the decoding "
      f"session's start to its first change (for shape_router, until that change could be routed: the `shapes` "
      f"option parsed, the shapes loaded, the index built); routing = `session_cpu_us - start_cpu_us`, the rest of "
      f"the session. The statement's own parsing of the `shapes` literal (11 MB at a million shapes, before the "
      f"session starts) is in neither. Medians over the reads; routing against the floor's. The reads go in rounds, "
      f"every consumer once a round; "
      f"\"by round\" is the median (and range) over the rounds of a round's routing against that round's floor, "
      f"which a slow spell of the shared machine moves less than the medians' ratio.")
    w("")
    w("Changes matching: the changes some shape of the consumer wants (of the workload's, and as a share of them), "
      "counted in one more read, not timed, as the distinct LSNs of its records (a record is one shape's copy of "
      "a change).")
    w("")
    w("Peak private MB: the peak of the backend's RssAnon (`/proc/<pid>/status`, polled every 2 ms while the read "
      "runs, parsing the statement included), median over the reads: the memory the backend itself allocated. "
      "Loaded private MB: the same over a read of the first transaction only (`upto_nchanges` 1), whose one change "
      "loads the shapes and builds the index: the shapes' memory without the records the SQL function returns. "
      "Peak RSS MB: the backend's max RSS (getrusage, VmHWM) after the read of median CPU; it also counts the pages "
      "of shared buffers the backend touched, which vary by tens of MB between reads of the same catalog.")
    w("")
    # Each round's routing against the same round's floor: the median and the
    # range over the rounds.
    def by_round(x):
        fr = floor.get("rounds", [])
        ratios = sorted(routing / floor_routing for routing, floor_routing in zip(x.get("rounds", []), fr)
                        if floor_routing > 0)
        if not ratios:
            return ""
        return f"{statistics.median(ratios):.2f} ({ratios[0]:.2f}–{ratios[-1]:.2f})"

    def matching(x):
        if "changes_matched" not in x:
            return ""
        return f"{x['changes_matched']:,} ({100 * x['changes_matched'] / n:.2f}%)"

    w("| consumer | CPU s | start CPU s | routing × floor | routing × floor, by round | routing µs/change above floor | records | changes matching | program runs / change | index candidates / change | scan candidates / change | loaded private MB | peak private MB | peak RSS MB |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, x in cons.items():
        routing = x["routing_us"]
        stats = json.loads(x["stats"]) if "stats" in x else {}
        per = (lambda k: f"{stats[k] / n:.2f}" if k in stats else "")
        if "equality_candidates" in stats:
            stats["index_candidates"] = sum(stats.get(k, 0) for k in (
                "equality_candidates", "range_candidates", "composite_candidates", "null_candidates",
                "complement_candidates", "prefix_candidates", "element_candidates", "substring_candidates"))
        w(f"| {name} | {x['cpu_median_us'] / 1e6:.2f} | {x['start_cpu_us'] / 1e6:.2f} | {routing / floor_routing:.2f} | "
          f"{by_round(x)} | {(routing - floor_routing) / n:.3f} | {x['messages']:,} | {matching(x)} | "
          f"{per('gate_evaluations')} | "
          f"{per('index_candidates')} | {per('scan_candidates')} | "
          f"{x['load_private_kb'] / 1024:.0f} | {x['private_kb'] / 1024:.0f} | {x['rss_kb'] / 1024:.0f} |")
    w("")
    # A consumer's routing CPU above the floor's, per change, and its counters.
    def above_floor(x):
        return (x["routing_us"] - floor_routing) / n

    def stats_of(x):
        return json.loads(x["stats"]) if "stats" in x else {}

    for k in sorted({a.opaque, a.opaque // 10} - {0}):
        above = above_floor(cons[opaque_name(k)])
        w(f"Opaque: {k:,} `title ILIKE` shapes cost {above:.2f} µs of CPU per change above the floor, "
          f"{above * 1000 / k:.1f} ns per shape and change.")
        w("")
    for k in sorted({a.lane, a.lane // 10} - {0}):
        x = cons[lane_name(k)]
        above, stats = above_floor(x), stats_of(x)
        w(f"Lane: {k:,} scan shapes `owner_id = k OR owner_id = assignee_id` cost {above:.2f} µs of CPU per change "
          f"above the floor, {above * 1000 / k:.2f} ns per shape and change (program runs: "
          f"{stats.get('gate_evaluations', 0):,}, lane runs: {stats.get('lane_runs', 0):,}).")
        w("")
    for k in sorted({a.expressions, a.expressions // 10} - {0}):
        for label, name in ((f"Expressions: {k:,} shapes `(amount + priority) % {a.expressions:,} = k`",
                             expression_name(k, a.expressions)),
                            (f"Text expressions: {k:,} shapes `substr(title, 1, 3) = 'xyz'`", text_expression_name(k))):
            x = cons[name]
            above, stats = above_floor(x), stats_of(x)
            w(f"{label} cost {above:.2f} µs of CPU per change above the floor ({x['messages']:,} records; program "
              f"runs: {stats.get('gate_evaluations', 0):,}, executor calls: {stats.get('fallback_evaluations', 0):,}, "
              f"exact hits: {stats.get('exact_hits', 0):,}, values reused: {stats.get('expression_reuses', 0):,}).")
            w("")
    big = cons.get(f"shape_router, S = {a.max_shapes:,} (mix)")
    base = cons.get(MEMORY_BASELINE)
    if big and base:
        w(f"Memory: peak private memory (RssAnon) with the shapes loaded, at S = {a.max_shapes:,} minus the "
          f"baseline's: {(big['load_private_kb'] - base['load_private_kb']) * 1024 / a.max_shapes:.0f} bytes per "
          f"shape. Over the full read, which also holds the {big['messages']:,} records the SQL function returns "
          f"(the baseline none): {(big['private_kb'] - base['private_kb']) * 1024 / a.max_shapes:.0f}; peak RSS "
          f"minus the baseline's: {(big['rss_kb'] - base['rss_kb']) * 1024 / a.max_shapes:.0f} (RSS also "
          f"counts the shared-buffer pages the backend touched, which vary by tens of MB between reads). Start: "
          f"{(big['start_cpu_us'] - base['start_cpu_us']) / 1e6:.2f} s of CPU above the baseline's to load "
          f"{a.max_shapes:,} shapes and build the index.")
        w("")
    whole = r.get("whole_catalog")
    if whole:
        w(f"Start, whole catalog: {statistics.median(whole['starts']) / 1e6:.2f} s of CPU (median; reads "
          f"{', '.join(f'{x / 1e6:.2f}' for x in whole['starts'])} s) to load {whole['shapes']:,} shapes and build the "
          f"index with the catalog in shared buffers (`pg_prewarm`), "
          f"{statistics.median(whole['ring_starts']) / 1e6:.2f} s (reads "
          f"{', '.join(f'{x / 1e6:.2f}' for x in whole['ring_starts'])} s) after a restart (the catalog read through "
          f"a ring of buffers); a slot without the `shapes` option, read from a new backend, once the shapes outside "
          f"the largest set ({whole['dropped']:,}) were dropped; catalog heap {whole['catalog_bytes'] / 2**20:.0f} MB, "
          f"`huge_pages` {whole['huge_pages']}"
          f"{', malloc on transparent huge pages (`--large-pages`)' if a.large_pages else ''}. No 11 MB option "
          f"is parsed or logged here, and the start is what a walsender or poller of every shape pays.")
        w("")
    if big and base and a.shards > 0:
        shards = [cons[shard_name(a.max_shapes, i, a.shards)] for i in range(a.shards)]
        big_routing = big["routing_us"]
        emitted = (lambda x: json.loads(x["stats"])["records_emitted"])
        w(f"Shards: the S = {a.max_shapes:,} set read by {a.shards} slots with `shard` = i/{a.shards} "
          f"(records the shards emitted, together: {sum(emitted(x) for x in shards):,}; unsharded: {emitted(big):,}).")
        w("")
        w("")
        w("| slot | shapes loaded | start CPU s above baseline | loaded private MB above baseline | peak private MB above baseline | peak RSS MB above baseline | routing CPU s | routing × unsharded's |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|")
        for label, x in [("unsharded", big)] + [(f"shard {i}/{a.shards}", x) for i, x in enumerate(shards)]:
            stats = json.loads(x["stats"]) if "stats" in x else {}
            routing = x["routing_us"]
            w(f"| {label} | {stats.get('shapes_loaded', 0):,} | {(x['start_cpu_us'] - base['start_cpu_us']) / 1e6:.2f} | "
              f"{(x['load_private_kb'] - base['load_private_kb']) / 1024:.0f} | "
              f"{(x['private_kb'] - base['private_kb']) / 1024:.0f} | {(x['rss_kb'] - base['rss_kb']) / 1024:.0f} | "
              f"{routing / 1e6:.2f} | {routing / big_routing:.2f} |")
        w("")
    if a.max_shapes > 0:
        w(f"Registration of {a.max_shapes:,} mixed shapes through `register_shapes`, in calls of 100,000 WHEREs made "
          f"beforehand (wall time of the calls, commits included): {r['facts']['registration_rate']:,.0f} shapes/s. "
          f"Scan shapes in the catalog: {r['facts']['scan_forms']:,}.")
        w("")
    w("Counters of each consumer's median read (`shape_router.decoding_stats()`; the floor's `bench_floor_stats()`):")
    w("")
    for name, x in cons.items():
        if "stats" in x:
            w(f"- {name}: `{x['stats']}`")
    with open(a.out, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
