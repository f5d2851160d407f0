#!/usr/bin/env python3
"""Poller benchmark: consumers that poll through SQL, as Supabase Realtime does, start a
decoding session with every pg_logical_slot_get_changes call. With
shape_router.warm_start (the default) a call that starts where the backend's previous
call stopped reuses its shapes and index; without it, every call loads every shape.

One backend makes --calls successive get_changes calls, each up to the end of the next
transaction of --batch changes (upto_lsn), on:
  - the floor (the no-op plugin of bench/floor),
  - shape_router with warm start,
  - shape_router with SET shape_router.warm_start = off (every call loads),
all slots created before the workload, so all decode the same WAL. --shapes shapes
`user_id = k`, rows with user_id uniform over 1..100,000,000 (about 1% of changes
match at 1,000,000 shapes). CPU = user + system time of the backend (getrusage via
sr_bench), around the first call and around the other calls.

  python3 bench/poll.py             # 1,000,000 shapes, 100 calls of 1,000 changes; writes bench/POLL.md
  python3 bench/poll.py --quick     # small, for CI: checks the harness works
Run as root (the cluster runs as the postgres user).
"""
import argparse
import datetime
import os
import platform
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import add_common_args, c_version, log, quick_out, run_on_cluster  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
USERS = 100_000_000

CONSUMERS = [
    ("floor (no-op plugin)", "sr_bench", None),
    ("shape_router, warm start", "shape_router", "on"),
    ("shape_router, warm_start = off", "shape_router", "off"),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", type=int, default=1_000_000)
    ap.add_argument("--calls", type=int, default=100)
    ap.add_argument("--batch", type=int, default=1_000, help="changes per call")
    add_common_args(ap, 54393, "POLL.md")
    a = ap.parse_args()
    if a.quick:
        a.shapes, a.calls, a.batch = 10_000, 10, 100
        quick_out(a, "POLL.md", "shape_router_poll_quick.md")
    run_on_cluster(a, run, write)


def run(c, a):
    c.psql("CREATE EXTENSION shape_router", "CREATE EXTENSION sr_bench",
           "CREATE TABLE todos (id bigserial PRIMARY KEY, user_id int NOT NULL, title text)",
           "ALTER TABLE todos REPLICA IDENTITY FULL")
    log(f"registering {a.shapes:,} shapes")
    for lo in range(0, a.shapes, 200_000):
        hi = min(lo + 200_000, a.shapes)
        c.psql(f"SELECT count(*) FROM shape_router.register_shapes('todos', "
               f"(SELECT array_agg(format('user_id = %s', 1 + (g::bigint * 7919) % {USERS})) "
               f"FROM generate_series({lo}, {hi - 1}) g))")
    c.psql("VACUUM ANALYZE shape_router.shape_catalog")
    for i, (_, plugin, _) in enumerate(CONSUMERS):
        c.psql(f"SELECT 'x' FROM pg_create_logical_replication_slot('p{i}', '{plugin}')")
    log(f"workload: {a.calls} transactions of {a.batch:,} inserts")
    c.psql(f"""CREATE PROCEDURE workload(n int, batch int) LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM setseed(0.42);
        FOR t IN 1..n LOOP
          INSERT INTO todos (user_id, title)
            SELECT 1 + floor(random() * {USERS})::int, md5(random()::text) FROM generate_series(1, batch);
          COMMIT;
          INSERT INTO poll_lsns VALUES (t, pg_current_wal_lsn());
          COMMIT;
        END LOOP;
      END $$""", "CREATE TABLE poll_lsns (call int, lsn pg_lsn)")
    c.psql(f"CALL workload({a.calls}, {a.batch})")
    lsns = c.psql("SELECT lsn FROM poll_lsns ORDER BY call")
    r = {}
    for i, (name, plugin, warm) in enumerate(CONSUMERS):
        setting = [f"SET shape_router.warm_start = {warm}"] if warm else []
        calls = [f"SELECT count(*) FROM pg_logical_slot_get_changes('p{i}', '{lsn}', NULL)" for lsn in lsns]
        stats = ["SELECT coalesce(sum(CASE WHEN warm_start THEN 1 ELSE 0 END), 0) FROM shape_router.decoding_stats()"] \
            if plugin == "shape_router" else []
        out = c.psql(*setting, "SELECT user_us + system_us FROM bench_rusage()", calls[0],
                     "SELECT user_us + system_us FROM bench_rusage()", *[x for call in calls[1:] for x in [call, *stats]],
                     "SELECT user_us + system_us FROM bench_rusage()")
        # lines: cpu0, count, cpu1, (count, warm)*, cpu2
        cpu0, first_records, cpu1, cpu2 = int(out[0]), int(out[1]), int(out[2]), int(out[-1])
        rest = out[3:-1]
        step = 2 if stats else 1
        records = first_records + sum(int(rest[k]) for k in range(0, len(rest), step))
        warm_calls = sum(int(rest[k + 1]) for k in range(0, len(rest), step)) if stats else 0
        r[name] = {"first_us": cpu1 - cpu0, "rest_us": cpu2 - cpu1, "messages": records, "warm_calls": warm_calls}
        log(f"{name}: first call {(cpu1 - cpu0) / 1e3:.1f} ms, then {(cpu2 - cpu1) / max(1, a.calls - 1) / 1e3:.2f} ms/call, "
            f"{records:,} messages, {warm_calls} warm calls")
    return r


def write(a, r, elapsed):
    commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    floor = r["floor (no-op plugin)"]
    per = (lambda x: x["rest_us"] / max(1, a.calls - 1) / 1e3)
    lines = [
        "# Poller benchmark results",
        "",
        f"Run {datetime.datetime.utcnow().strftime('%Y-%m-%d %H:%M UTC')}, commit {commit}, {os.cpu_count()} CPUs, "
        f"{platform.platform()}, PostgreSQL {c_version()}.",
        f"Command: `python3 bench/poll.py{' --quick' if a.quick else ''}` ({elapsed / 60:.1f} min in all).",
        "",
        f"{a.shapes:,} shapes `user_id = k`; {a.calls} successive `pg_logical_slot_get_changes` calls in one backend, "
        f"each up to the end of the next transaction of {a.batch:,} inserts (user_id uniform over 1..{USERS:,}). "
        "CPU = user + system time of the backend.",
        "",
        "| consumer | first call CPU ms | later calls: CPU ms per call | above the floor's, ms per call | messages | warm calls |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, x in r.items():
        lines.append(f"| {name} | {x['first_us'] / 1e3:.1f} | {per(x):.2f} | {per(x) - per(floor):.2f} | "
                     f"{x['messages']:,} | {x['warm_calls']} of {a.calls - 1} |")
    with open(a.out, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
