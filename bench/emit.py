#!/usr/bin/env python3
"""Emission benchmark: what writing a record costs, on its own and end to end.

On its own: emit_bench() (bench/floor, with shape_router's record writer
src/pg/record.c built in) writes one row of a todos-like table --records times
as an insert, update or delete record, in JSON and in text, and the begin and
commit records, without and with batch-bytes packing: CPU per record, median of
--reps calls.

End to end: one shape with no WHERE on that table, so every change is one
record; --changes inserts (transactions of 100), read by a shape_router slot
(JSON, text, JSON with batch-bytes 65536) and by the no-op floor, in fresh
backends, median of --reps: CPU of the whole read minus the start (reading up to
the first change), per record, above the floor's.

  python3 bench/emit.py             # writes bench/EMIT.md
  python3 bench/emit.py --quick     # small, for CI: checks the harness works
Run as root (the cluster runs as the postgres user).
"""
import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import add_common_args, c_version, log, measure, quick_out, run_on_cluster  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
KINDS = ["insert", "update", "delete", "begin", "commit"]
BATCH = 65536


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=1_000_000, help="records per emit_bench() call")
    ap.add_argument("--changes", type=int, default=300_000, help="inserts read end to end")
    ap.add_argument("--reps", type=int, default=3)
    add_common_args(ap, 54395, "EMIT.md")
    a = ap.parse_args()
    if a.quick:
        a.records, a.changes, a.reps = 10_000, 2_000, 1
        quick_out(a, "EMIT.md", "shape_router_emit_quick.md")
    run_on_cluster(a, run, write)


def run(c, a):
    c.psql("CREATE EXTENSION shape_router", "CREATE EXTENSION sr_bench",
           """CREATE TABLE todos (id bigserial PRIMARY KEY, user_id int NOT NULL, status text NOT NULL,
              priority int, title text, updated_at timestamptz DEFAULT now())""",
           "ALTER TABLE todos REPLICA IDENTITY FULL",
           "INSERT INTO todos (user_id, status, priority, title, updated_at) "
           "VALUES (42, 'open', 3, md5('x'), '2026-12-03 12:00:00+00')")
    r = {"micro": {}, "e2e": {}}
    for fmt in ("json", "text"):
        for kind in KINDS:
            for batch in ((0, BATCH) if kind == "insert" else (0,)):
                runs = [c.psql(f"SELECT cpu_ns_per_record, bytes_per_record FROM emit_bench('todos', {a.records}, "
                               f"'{fmt}', '{kind}', {batch})")[0].split("|") for _ in range(a.reps)]
                ns = statistics.median(float(x[0]) for x in runs)
                r["micro"][(fmt, kind, batch)] = {"ns": ns, "bytes": float(runs[0][1])}
                log(f"{fmt} {kind} batch {batch}: {ns:.0f} ns/record")
    c.psql("SELECT shape_router.register_shape('todos', NULL)")
    consumers = [("floor (no-op plugin)", "sr_bench", []),
                 ("shape_router, JSON", "shape_router", []),
                 ("shape_router, text", "shape_router", ["format", "text"]),
                 (f"shape_router, JSON, batch-bytes {BATCH}", "shape_router", ["batch-bytes", str(BATCH)])]
    for i, (_, plugin, _) in enumerate(consumers):
        c.psql(f"SELECT 'x' FROM pg_create_logical_replication_slot('e{i}', '{plugin}')")
    c.psql("INSERT INTO todos (user_id, status) VALUES (0, 'start marker')")
    start_lsn = c.psql("SELECT pg_current_wal_lsn()")[0]
    c.psql(f"""DO $$ BEGIN
                 FOR t IN 1..{max(1, a.changes // 100)} LOOP
                   INSERT INTO todos (user_id, status, priority, title)
                     SELECT 1 + g, 'open', g % 10, md5(g::text) FROM generate_series(1, 100) g;
                   COMMIT;
                 END LOOP;
               END $$""")
    for i, (name, plugin, opts) in enumerate(consumers):
        r["e2e"][name] = measure(c, f"e{i}", "text", opts, plugin == "shape_router", a.reps, start_lsn)
        log(f"{name}: {r['e2e'][name]['cpu_median_us'] / 1e6:.2f} s CPU")
    r["changes"] = max(1, a.changes // 100) * 100
    return r


def write(a, r, elapsed):
    commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    w = []
    w.append("# Emission benchmark results")
    w.append("")
    w.append(f"Run {datetime.datetime.utcnow().strftime('%Y-%m-%d %H:%M UTC')}, commit {commit}, {os.cpu_count()} CPUs, "
             f"{platform.platform()}, PostgreSQL {c_version()}.")
    w.append(f"Command: `python3 bench/emit.py{' --quick' if a.quick else ''}` ({elapsed / 60:.1f} min in all).")
    w.append("")
    w.append(f"On its own (`emit_bench()`, shape_router's record writer in a loop over one row of "
             f"`todos (id bigserial, user_id int, status text, priority int, title text, updated_at timestamptz)`, "
             f"{a.records:,} records a call, median of {a.reps}):")
    w.append("")
    w.append("| format | record | batch-bytes | CPU ns per record | bytes per record |")
    w.append("|---|---|---:|---:|---:|")
    for (fmt, kind, batch), x in r["micro"].items():
        w.append(f"| {fmt} | {kind} | {batch or '-'} | {x['ns']:.0f} | {x['bytes']:.0f} |")
    w.append("")
    floor = r["e2e"]["floor (no-op plugin)"]
    floor_routing = floor["cpu_median_us"] - floor["start_cpu_us"]
    w.append(f"End to end (one shape with no WHERE: each of {r['changes']:,} inserts is one record, "
             f"in transactions of 100 with their begin and commit records; CPU after the start, "
             f"median of {a.reps}, against the no-op floor over the same WAL):")
    w.append("")
    w.append("| consumer | CPU s | messages | µs per record above the floor |")
    w.append("|---|---:|---:|---:|")
    for name, x in r["e2e"].items():
        routing = x["cpu_median_us"] - x["start_cpu_us"]
        records = r["changes"]
        above = "" if name.startswith("floor") else f"{(routing - floor_routing) / records:.3f}"
        w.append(f"| {name} | {routing / 1e6:.2f} | {x['messages']:,} | {above} |")
    with open(a.out, "w") as f:
        f.write("\n".join(w) + "\n")


if __name__ == "__main__":
    main()
