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
   5  amount BETWEEN a AND a + 999                        two-sided range
and, at the largest S once more, with 100 shapes no cover reaches (title ILIKE
'%..%'): scan shapes, what cover index I still leaves to the program.

Shape sets S = 10,000, 100,000 and 1,000,000 are prefixes of one registration
(each prefix has the same mix), selected with the plugin's `shapes` option. Key
values of rows and shapes are drawn from 1..100 × 1,000,000, so that about 1% of
changes match some shape at S = 1,000,000 (fewer at smaller S).

  python3 bench/mix.py                 # default: 200,000 changes, S up to 1,000,000; writes bench/MIX.md
  python3 bench/mix.py --quick         # small, for CI: checks the harness works
Run as root (the cluster runs as the postgres user).
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import c_version, log, measure, run_on_cluster  # noqa: E402

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
    (5, "amount BETWEEN a AND a + 999", "format('amount BETWEEN %s AND %s', a, a + 999)"),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--changes", type=int, default=200_000)
    ap.add_argument("--max-shapes", type=int, default=1_000_000)
    ap.add_argument("--reps", type=int, default=3, help="repetitions per consumer (median reported)")
    ap.add_argument("--quick", action="store_true", help="small sizes for CI")
    ap.add_argument("--port", type=int, default=54392)
    ap.add_argument("--out", default=os.path.join(HERE, "MIX.md"))
    ap.add_argument("--keep", action="store_true", help="keep the cluster directory")
    ap.add_argument("--shards", type=int, default=3,
                    help="also run the largest set as this many `shard` slots (0: not)")
    a = ap.parse_args()
    if a.quick:
        a.changes, a.max_shapes, a.reps = 10_000, 10_000, 1
        if a.out == os.path.join(HERE, "MIX.md"):
            a.out = os.path.join(tempfile.gettempdir(), "shape_router_mix_quick.md")
    run_on_cluster(a, run, write)


def shape_sets(max_shapes):
    return [s for s in (10_000, 100_000, 1_000_000) if s <= max_shapes]


def shard_name(s, i, n):
    return f"shape_router, S = {s:,} (mix), shard {i}/{n}"


def run(c, a):
    r = {"consumers": {}, "facts": {}}
    c.psql("CREATE EXTENSION shape_router", "CREATE EXTENSION sr_bench")
    c.psql("""CREATE TABLE items (id bigserial PRIMARY KEY, tenant_id int NOT NULL, owner_id int, assignee_id int,
              status text NOT NULL, project_id int, priority int, score float8, amount bigint, title text)""",
           "ALTER TABLE items REPLICA IDENTITY FULL")
    # One clause per shape ordinal g: form by g's position in a cycle of 100, so
    # that every prefix of the registration holds the mix.
    cases = []
    position = 0
    for weight, _, sql in FORMS:
        cases.append(f"WHEN g % 100 < {position + weight} THEN {sql}")
        position += weight
    clause_sql = (f"SELECT array_agg(CASE {' '.join(cases)} END ORDER BY g) FROM ("
                  f"SELECT g, 1 + floor(random() * {KEYS})::int AS k1, floor(random() * 10)::int AS t, "
                  f"floor(random() * 1000000000)::bigint AS a FROM generate_series(__LO__, __HI__) g) s")
    t0 = time.time()
    chunk = 100_000
    for lo in range(0, a.max_shapes, chunk):
        hi = min(lo + chunk, a.max_shapes) - 1
        # seeded in the same session: every run (and build) registers the same shapes
        c.psql(f"SELECT setseed({lo / a.max_shapes / 2:.6f})",
               f"SELECT count(*) FROM shape_router.register_shapes('items', ({clause_sql.replace('__LO__', str(lo)).replace('__HI__', str(hi))}))")
    reg_seconds = time.time() - t0
    r["facts"]["registration_rate"] = a.max_shapes / reg_seconds if reg_seconds > 0 else 0
    scan_ids = c.psql("SELECT string_agg(id::text, ',') FROM shape_router.register_shapes('items', "
                      "(SELECT array_agg(format('title ILIKE ''%%%s%%''', md5(g::text))) FROM generate_series(1, 100) g)) id")[0]
    c.psql("VACUUM ANALYZE shape_router.shape_catalog")
    first_id = int(c.psql("SELECT min(shape_id) FROM shape_router.shapes")[0])
    # Scan shapes in the catalog (builds before covers kept one index column, index_attnum).
    column = c.psql("SELECT attname FROM pg_attribute WHERE attrelid = 'shape_router.shape_catalog'::regclass "
                    "AND attname IN ('index_cover', 'index_attnum')")[0]
    r["facts"]["scan_forms"] = int(c.psql(f"SELECT count(*) FROM shape_router.shape_catalog WHERE {column} IS NULL")[0])

    consumers = [("floor (no-op plugin)", "sr_bench", [])]
    for s in shape_sets(a.max_shapes):
        subset = ",".join(f"{first_id + k:010d}" for k in range(s))
        consumers.append((f"shape_router, S = {s:,} (mix)", "shape_router", ["shapes", subset]))
    # The memory baseline: no shape, but an option as long as the largest set's
    # (ids that do not exist), so the difference in peak RSS is the shapes alone.
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
    slot_of = {}
    for i, (name, plugin, _) in enumerate(consumers):
        slot_of[name] = f"m{i}"
        c.psql(f"SELECT 'x' FROM pg_create_logical_replication_slot('m{i}', '{plugin}')")
    c.psql("INSERT INTO items (tenant_id, status) VALUES (0, 'start marker')")
    start_lsn = c.psql("SELECT pg_current_wal_lsn()")[0]

    # Transactions of 100 changes: 70 inserts, 20 updates (assignee, status,
    # priority, score), 10 deletes.
    log(f"workload: {a.changes:,} changes")
    t0 = time.time()
    c.psql(f"""CREATE PROCEDURE workload(n_txn int) LANGUAGE plpgsql AS $$
      DECLARE base bigint;
      BEGIN
        PERFORM setseed(0.42);
        FOR t IN 1..n_txn LOOP
          INSERT INTO items (tenant_id, owner_id, assignee_id, status, project_id, priority, score, amount, title)
            SELECT 1 + floor(random() * {KEYS})::int, 1 + floor(random() * {KEYS})::int,
                   1 + floor(random() * {KEYS})::int, (ARRAY['open','done','review'])[1 + floor(random() * 3)::int],
                   1 + floor(random() * {KEYS})::int, floor(random() * 10)::int, random() * 1000000,
                   floor(random() * 1000000000)::bigint, md5(random()::text)
              FROM generate_series(1, 70);
          base := currval('items_id_seq') - 70;
          UPDATE items SET assignee_id = 1 + floor(random() * {KEYS})::int, status = 'open',
                 priority = (priority + 1) % 10, score = random() * 1000000
           WHERE id > base AND id <= base + 20;
          DELETE FROM items WHERE id > base + 20 AND id <= base + 30;
          COMMIT;
        END LOOP;
      END $$""")
    c.psql(f"CALL workload({a.changes // 100})")
    r["facts"]["workload_seconds"] = time.time() - t0
    r["facts"]["changes"] = a.changes

    for name, plugin, opts in consumers:
        best = measure(c, slot_of[name], "text", opts, plugin == "shape_router", a.reps, start_lsn)
        r["consumers"][name] = best
        log(f"{name}: {best['cpu_median_us'] / 1e6:.2f} s CPU (start {best['start_cpu_us'] / 1e6:.2f} s), "
            f"{best['messages']:,} messages")
    return r


def write(a, r, elapsed):
    cons = r["consumers"]
    floor = cons["floor (no-op plugin)"]
    floor_routing = floor["cpu_median_us"] - floor["start_cpu_us"]
    n = r["facts"]["changes"]
    commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    lines = []
    w = lines.append
    w("# Realistic-mix benchmark results")
    w("")
    w(f"Run {datetime.datetime.utcnow().strftime('%Y-%m-%d %H:%M UTC')}, commit {commit}, {os.cpu_count()} CPUs, "
      f"{platform.platform()}, PostgreSQL {c_version()}.")
    w(f"Command: `python3 bench/mix.py{' --quick' if a.quick else ''}` ({elapsed / 60:.1f} min in all).")
    w("")
    w("Shapes (per 100): " + "; ".join(f"{wt} `{form}`" for wt, form, _ in FORMS) +
      "; the last row adds 100 `title ILIKE '%…%'` shapes, which have no cover (scan shapes).")
    w(f"Workload: {n:,} changes in transactions of 100 (70 inserts, 20 updates, 10 deletes), key values uniform over "
      f"1..{KEYS:,}. CPU = user + system time of the backend running `pg_logical_slot_peek_changes`, median of "
      f"{a.reps}. Routing = CPU minus the start (decoding up to one change before the workload: loading the shapes "
      f"and building the index), against the floor's own.")
    w("")
    w("| consumer | CPU s | start CPU s | routing × floor | routing µs/change above floor | records | program runs / change | index candidates / change | scan candidates / change | peak RSS MB |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, x in cons.items():
        routing = x["cpu_median_us"] - x["start_cpu_us"]
        stats = json.loads(x["stats"]) if "stats" in x else {}
        per = (lambda k: f"{stats[k] / n:.2f}" if k in stats else "")
        if "equality_candidates" in stats:
            stats["index_candidates"] = (stats["equality_candidates"] + stats["range_candidates"] +
                                         stats.get("composite_candidates", 0))
        w(f"| {name} | {x['cpu_median_us'] / 1e6:.2f} | {x['start_cpu_us'] / 1e6:.2f} | {routing / floor_routing:.2f} | "
          f"{(routing - floor_routing) / n:.3f} | {x['messages']:,} | {per('gate_evaluations')} | "
          f"{per('index_candidates')} | {per('scan_candidates')} | {x['rss_kb'] / 1024:.0f} |")
    w("")
    big = cons.get(f"shape_router, S = {a.max_shapes:,} (mix)")
    base = cons.get(MEMORY_BASELINE)
    if big and base:
        w(f"Memory: peak RSS at S = {a.max_shapes:,} minus the baseline's: "
          f"{(big['rss_kb'] - base['rss_kb']) * 1024 / a.max_shapes:.0f} bytes per shape. Start: "
          f"{(big['start_cpu_us'] - base['start_cpu_us']) / 1e6:.2f} s of CPU above the baseline's to load "
          f"{a.max_shapes:,} shapes and build the index.")
        w("")
    if big and base and a.shards > 0:
        shards = [cons[shard_name(a.max_shapes, i, a.shards)] for i in range(a.shards)]
        big_routing = big["cpu_median_us"] - big["start_cpu_us"]
        emitted = (lambda x: json.loads(x["stats"])["records_emitted"])
        w(f"Shards: the S = {a.max_shapes:,} set read by {a.shards} slots with `shard` = i/{a.shards} "
          f"(records the shards emitted, together: {sum(emitted(x) for x in shards):,}; unsharded: {emitted(big):,}).")
        w("")
        w("")
        w("| slot | shapes loaded | start CPU s above baseline | peak RSS MB above baseline | routing CPU s | routing × unsharded's |")
        w("|---|---:|---:|---:|---:|---:|")
        for label, x in [("unsharded", big)] + [(f"shard {i}/{a.shards}", x) for i, x in enumerate(shards)]:
            stats = json.loads(x["stats"]) if "stats" in x else {}
            routing = x["cpu_median_us"] - x["start_cpu_us"]
            w(f"| {label} | {stats.get('shapes_loaded', 0):,} | {(x['start_cpu_us'] - base['start_cpu_us']) / 1e6:.2f} | "
              f"{(x['rss_kb'] - base['rss_kb']) / 1024:.0f} | {routing / 1e6:.2f} | {routing / big_routing:.2f} |")
        w("")
    w(f"Registration of {a.max_shapes:,} mixed shapes through `register_shapes`: {r['facts']['registration_rate']:,.0f} shapes/s. "
      f"Scan shapes in the catalog: {r['facts']['scan_forms']:,}.")
    w("")
    w("Funnel counters (`shape_router.decoding_stats()` after each run):")
    w("")
    for name, x in cons.items():
        if "stats" in x:
            w(f"- {name}: `{x['stats']}`")
    with open(a.out, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
