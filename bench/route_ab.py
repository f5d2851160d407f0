#!/usr/bin/env python3
"""Routing CPU of several slots read in turn, for comparing builds of the library.

Each read is a new backend that peeks the whole of one slot (with the `shapes`
option listing the catalog's ids up to --max-id, as bench/mix.py selects a set;
no option with --max-id 0) and then reads the plugin's own counters: routing CPU
= session_cpu_us - start_cpu_us (what bench/mix.py reports), so the start, the
statement's parsing and the backend's own start are left out; the start
(start_cpu_us: options parsed, shapes loaded, index built) is printed apart. Each round reads
every slot once, the order rotated a slot a round; each slot's median is printed
with the median, over the rounds, of its routing against the first slot's in
that round (the floor, usually). A failed statement stops the script.

Slots are read with whatever plugin they were created with: `sr_bench` (the
floor, counters from bench_floor_stats()), `shape_router`, or another build of
shape_router installed under its own name. For that: copy the build's
shape_router.so to $libdir/shape_router_b.so, add shape_router_b to
output_plugin_libraries, restart, and copy a slot to it:

  SELECT pg_copy_logical_replication_slot('m1', 'm1b', false, 'shape_router_b');

A function public.shape_router_b_decoding_stats() bound to that library is
created on first use, to read its counters (the extension's function would load
the other library into the same backend).

  python3 bench/route_ab.py --dir /tmp/shape_router_e2e.XXXX --rounds 9 --max-id 10000 m0 m1 m1b

Run as root on a cluster kept by `bench/mix.py --keep`, its server running.
"""
import argparse
import json
import statistics
import subprocess

PSQL = "/usr/lib/postgresql/15/bin/psql"


class Session:
    def __init__(self, args):
        self.p = subprocess.Popen(["runuser", "-u", "postgres", "--", PSQL, "-X", "-At", "-v", "ON_ERROR_STOP=1",
                                   "-h", args.dir, "-p", str(args.port), "-d", "postgres"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)

    def q(self, sql):
        # (a \gset ends its statement itself; anything else needs the semicolon to run)
        end = "" if sql.rstrip().endswith("\\gset") else ";"
        self.p.stdin.write(sql + end + "\n\\echo __END__\n")
        self.p.stdin.flush()
        out = []
        while True:
            line = self.p.stdout.readline()
            if line == "":
                raise RuntimeError(f"psql ended during: {sql[:200]}")
            if line.strip() == "__END__":
                return out
            out.append(line.rstrip("\n"))

    def close(self):
        self.p.stdin.close()
        self.p.wait()


def stats_function(s, plugin):
    if plugin == "shape_router":
        return "shape_router.decoding_stats()"
    name = f"public.{plugin}_decoding_stats"
    library = f"$libdir/{plugin}"
    if not s.q(f"SELECT 1 FROM pg_proc WHERE oid = to_regproc('{name}')"):
        definition = "\n".join(s.q("SELECT pg_get_functiondef('shape_router.decoding_stats'::regproc)"))
        if "'$libdir/shape_router'" not in definition:
            raise SystemExit("shape_router.decoding_stats() is not bound to $libdir/shape_router")
        s.q(definition.replace("shape_router.decoding_stats", name)
            .replace("'$libdir/shape_router'", f"'{library}'"))
    bound = s.q(f"SELECT probin FROM pg_proc WHERE oid = to_regproc('{name}')")
    if bound != [library]:
        raise SystemExit(f"{name}() is bound to {bound}, not {library}: drop it")
    return f"{name}()"


def routing_cpu(args, slot, plugin):
    """(routing CPU s, start CPU s) of one read of slot."""
    s = Session(args)
    try:
        if plugin == "sr_bench":  # (no shapes: the option is shape_router's)
            s.q(f"SELECT count(*) FROM pg_logical_slot_peek_changes('{slot}', NULL, NULL)")
            st = json.loads(s.q("SELECT row_to_json(x) FROM bench_floor_stats() x")[0])
            if st.get("start_cpu_us") is None or st.get("session_cpu_us") is None:
                raise SystemExit(f"slot {slot}: the floor read no change")
            return (st["session_cpu_us"] - st["start_cpu_us"]) / 1e6, st["start_cpu_us"] / 1e6
        function = stats_function(s, plugin)
        if args.max_id > 0:
            s.q("SELECT coalesce(string_agg(shape_id::text, ',' ORDER BY shape_id), '') AS ids "
                f"FROM shape_router.shape_catalog WHERE shape_id <= {args.max_id} AND where_source IS NOT NULL \\gset")
            if s.q("SELECT :'ids' = ''") == ["t"]:
                raise SystemExit(f"no shape with an id up to {args.max_id}")
            s.q(f"SELECT count(*) FROM pg_logical_slot_peek_changes('{slot}', NULL, NULL, 'shapes', :'ids')")
        else:
            s.q(f"SELECT count(*) FROM pg_logical_slot_peek_changes('{slot}', NULL, NULL)")
        row = s.q(f"SELECT start_cpu_us, session_cpu_us FROM {function}")
        if not row or "|" not in row[0] or row[0].startswith("|") or row[0].endswith("|"):
            raise SystemExit(f"no counters for slot {slot} ({plugin})")
        start, session = (int(x) for x in row[0].split("|"))
        return (session - start) / 1e6, start / 1e6
    finally:
        s.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", required=True, help="the kept cluster's directory (its socket directory)")
    ap.add_argument("--port", type=int, default=54392)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--max-id", type=int, default=0, help="the `shapes` option: ids up to this (0: no option)")
    ap.add_argument("slots", nargs="+")
    args = ap.parse_args()
    s = Session(args)
    plugins = dict(line.split("|") for line in s.q("SELECT slot_name, plugin FROM pg_replication_slots"))
    s.close()
    for slot in args.slots:
        if slot not in plugins:
            raise SystemExit(f"no slot {slot}")
    cpu = {slot: [] for slot in args.slots}
    start = {slot: [] for slot in args.slots}
    for r in range(args.rounds):
        k = r % len(args.slots)
        for slot in args.slots[k:] + args.slots[:k]:
            routing, started = routing_cpu(args, slot, plugins[slot])
            cpu[slot].append(routing)
            start[slot].append(started)
    first = cpu[args.slots[0]]
    for slot in args.slots:
        ratios = [x / f for x, f in zip(cpu[slot], first) if f > 0]
        print(f"{slot} ({plugins[slot]}): routing CPU median {statistics.median(cpu[slot]):.3f} s, "
              f"by round x {args.slots[0]} {statistics.median(ratios) if ratios else float('nan'):.3f}; "
              + " ".join(f"{x:.3f}" for x in cpu[slot])
              + f"; start CPU median {statistics.median(start[slot]):.3f} s")


if __name__ == "__main__":
    main()
