#!/usr/bin/env python3
"""Per-record benchmark: every change matches a shape, and the records spread over S
shapes (S = 1, 1,000, 100,000, 1,000,000). Sync deployments keep shapes for active
users, so most changes match some shape and each shape is reached only a few times
per decoding session: what a record costs then is what a shape costs the first time
it is used in a session, plus emission.

1,000,000 shapes `user_id = k` (k = 1..--max-shapes) are registered once. Then, for
each S, a floor slot (the no-op plugin) and a shape_router slot are created, and a
segment of --changes changes is written, all to users 1..S (transactions of 100: 70
inserts, 20 updates, 10 deletes). Each slot is read up to its segment's end, in fresh
backends, median of --reps: CPU of the whole read minus CPU of reading up to the
segment's first change (the start: loading the shapes), against the floor's. Every
shape_router slot loads all shapes; only S of them are used.

  python3 bench/spread.py             # writes bench/SPREAD.md
  python3 bench/spread.py --quick     # small, for CI: checks the harness works
Run as root (the cluster runs as the postgres user).
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import add_common_args, c_version, log, quick_out, run_on_cluster  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--max-shapes", type=int, default=1_000_000)
    ap.add_argument("--changes", type=int, default=300_000, help="changes per segment")
    ap.add_argument("--reps", type=int, default=3)
    add_common_args(ap, 54394, "SPREAD.md")
    a = ap.parse_args()
    if a.quick:
        a.max_shapes, a.changes, a.reps = 1_000, 2_000, 1
        quick_out(a, "SPREAD.md", "shape_router_spread_quick.md")
    run_on_cluster(a, run, write)


def spreads(max_shapes):
    return [s for s in (1, 1_000, 100_000, 1_000_000) if s <= max_shapes]


def read(c, slot, upto, stats):
    lines = c.psql("SELECT user_us + system_us FROM bench_rusage()",
                   f"SELECT count(*) FROM pg_logical_slot_peek_changes('{slot}', '{upto}', NULL)",
                   "SELECT user_us + system_us FROM bench_rusage()",
                   *(["SELECT row_to_json(s) FROM shape_router.decoding_stats() s"] if stats else []))
    return {"cpu_us": int(lines[2]) - int(lines[0]), "messages": int(lines[1]),
            "stats": json.loads(lines[3]) if stats else None}


def measure(c, slot, start, end, stats, reps):
    runs = [read(c, slot, end, stats) for _ in range(reps)]
    starts = [read(c, slot, start, False)["cpu_us"] for _ in range(reps)]
    best = sorted(runs, key=lambda x: x["cpu_us"])[len(runs) // 2]
    best["routing_us"] = statistics.median(x["cpu_us"] for x in runs) - statistics.median(starts)
    best["start_us"] = statistics.median(starts)
    return best


def run(c, a):
    c.psql("CREATE EXTENSION shape_router", "CREATE EXTENSION sr_bench",
           "CREATE TABLE feed (id bigserial PRIMARY KEY, user_id int NOT NULL, status text, title text)",
           "ALTER TABLE feed REPLICA IDENTITY FULL")
    log(f"registering {a.max_shapes:,} shapes")
    for lo in range(1, a.max_shapes + 1, 200_000):
        hi = min(lo + 199_999, a.max_shapes)
        c.psql(f"SELECT count(*) FROM shape_router.register_shapes('feed', "
               f"(SELECT array_agg('user_id = ' || g) FROM generate_series({lo}, {hi}) g))")
    c.psql("VACUUM ANALYZE shape_router.shape_catalog")
    c.psql("""CREATE PROCEDURE segment(n_txn int, users int) LANGUAGE plpgsql AS $$
      DECLARE base bigint;
      BEGIN
        PERFORM setseed(0.42);
        FOR t IN 1..n_txn LOOP
          INSERT INTO feed (user_id, status, title)
            SELECT 1 + floor(random() * users)::int, 'open', md5(random()::text) FROM generate_series(1, 70);
          base := currval('feed_id_seq') - 70;
          UPDATE feed SET status = 'done' WHERE id > base AND id <= base + 20;
          DELETE FROM feed WHERE id > base + 20 AND id <= base + 30;
          COMMIT;
        END LOOP;
      END $$""")
    segments = []
    for s in spreads(a.max_shapes):
        c.psql(f"SELECT 'x' FROM pg_create_logical_replication_slot('floor_{s}', 'sr_bench')",
               f"SELECT 'x' FROM pg_create_logical_replication_slot('sr_{s}', 'shape_router')",
               "INSERT INTO feed (user_id, title) VALUES (0, 'segment start')")
        start = c.psql("SELECT pg_current_wal_lsn()")[0]
        log(f"segment S = {s:,}: {a.changes:,} changes")
        c.psql(f"CALL segment({a.changes // 100}, {s})")
        end = c.psql("SELECT pg_current_wal_lsn()")[0]
        segments.append((s, start, end))
    r = {}
    for s, start, end in segments:
        floor = measure(c, f"floor_{s}", start, end, False, a.reps)
        sr = measure(c, f"sr_{s}", start, end, True, a.reps)
        r[s] = {"floor": floor, "shape_router": sr}
        log(f"S = {s:,}: {sr['stats']['records_emitted']:,} records, "
            f"{(sr['routing_us'] - floor['routing_us']) / max(1, sr['stats']['records_emitted']):.3f} µs/record above the floor")
    return r


def write(a, r, elapsed):
    commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    lines = [
        "# Per-record benchmark results (records spread over S shapes)",
        "",
        f"Run {datetime.datetime.utcnow().strftime('%Y-%m-%d %H:%M UTC')}, commit {commit}, {os.cpu_count()} CPUs, "
        f"{platform.platform()}, PostgreSQL {c_version()}.",
        f"Command: `python3 bench/spread.py{' --quick' if a.quick else ''}` ({elapsed / 60:.1f} min in all).",
        "",
        f"{a.max_shapes:,} shapes `user_id = k` loaded by every shape_router slot; per S, a segment of {a.changes:,} "
        "changes (70 inserts, 20 updates, 10 deletes per transaction) to users 1..S, so every change matches one "
        f"shape. CPU after the start (median of {a.reps}), against the no-op floor over the same segment.",
        "",
        "| S (shapes the records spread over) | records | floor CPU s | shape_router CPU s | µs per record above the floor | start CPU s |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for s, x in r.items():
        records = x["shape_router"]["stats"]["records_emitted"]
        above = (x["shape_router"]["routing_us"] - x["floor"]["routing_us"]) / max(1, records)
        lines.append(f"| {s:,} | {records:,} | {x['floor']['routing_us'] / 1e6:.2f} | "
                     f"{x['shape_router']['routing_us'] / 1e6:.2f} | {above:.3f} | {x['shape_router']['start_us'] / 1e6:.2f} |")
    with open(a.out, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
