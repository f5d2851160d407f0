#!/usr/bin/env python3
"""End-to-end benchmark: shape_router against PostgreSQL's decoding floor and its peers.

One throwaway cluster, one workload, every consumer's slot created before the
workload, so all decode the same WAL. Each consumer's cost is the CPU time of
the backend running pg_logical_slot_peek_*changes (getrusage, via the sr_bench
module in bench/floor), median of --reps repetitions, in the same run.

  python3 bench/e2e.py                 # default size (1,000,000 changes), writes bench/RESULTS.md
  python3 bench/e2e.py --quick         # small, for CI: checks the harness works
Run as root (it starts the cluster as the postgres user); see bench/README.md.
The server is the one of $PG_CONFIG (default: PostgreSQL 15's pg_config).
"""
import argparse
import datetime
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

PG_CONFIG = os.environ.get("PG_CONFIG", "/usr/lib/postgresql/15/bin/pg_config")
BIN = subprocess.run([PG_CONFIG, "--bindir"], capture_output=True, text=True, check=True).stdout.strip()
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def statement(cmd):
    return cmd.rstrip().rstrip(";") + ";\n"


class MemoryPoller(threading.Thread):
    """Reads a backend's /proc/<pid>/status every 2 ms until finish(): the peak of its
    RssAnon, its private memory. (Its VmHWM, getrusage's max RSS, also counts the
    shared-buffer pages it touched, RssShmem, which vary by tens of MB between reads.)"""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.path = f"/proc/{pid}/status"
        self.done = threading.Event()
        self.anon_peak_kb = 0
        self.shmem_kb = 0
        self.samples = 0
        self.sample()  # one before the watched statement starts

    def sample(self):
        try:
            with open(self.path) as f:
                fields = dict(line.split(":", 1) for line in f if line.startswith("Rss"))
        except OSError:
            return
        if "RssAnon" not in fields:  # exiting: no memory map any more
            return
        self.anon_peak_kb = max(self.anon_peak_kb, int(fields["RssAnon"].split()[0]))
        self.shmem_kb = int(fields["RssShmem"].split()[0])
        self.samples += 1

    def run(self):
        while not self.done.wait(0.002):
            self.sample()

    def finish(self):
        self.done.set()
        if self.is_alive():
            self.join()
        self.sample()  # the last, with the session still open: RssShmem at the read's end


class Cluster:
    def __init__(self, port, keep, large_pages=False):
        self.dir = tempfile.mkdtemp(prefix="shape_router_e2e.")
        os.chmod(self.dir, 0o755)
        shutil.chown(self.dir, "postgres")
        self.port = port
        self.keep = keep
        self.large_pages = large_pages
        self.huge_pages_before = None  # vm.nr_hugepages before start() raised it
        self.env = []

    def run(self, *args, **kw):
        return subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True, **kw)

    def start(self):
        data = os.path.join(self.dir, "data")
        self.run(f"{BIN}/initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-locale", "-E", "UTF8",
                 stdout=subprocess.DEVNULL)
        described = subprocess.run(["runuser", "-u", "postgres", "--", f"{BIN}/postgres", "--describe-config"],
                                   capture_output=True, text=True).stdout
        conf = [
            "wal_level = logical", "max_replication_slots = 64", "max_wal_senders = 16",
            f"port = {self.port}", f"unix_socket_directories = '{self.dir}'", "listen_addresses = ''",
            "shared_buffers = 1GB", "max_wal_size = 16GB", "checkpoint_timeout = 30min",
            "synchronous_commit = on", "fsync = off", "full_page_writes = off",
            "logical_decoding_work_mem = 256MB", "autovacuum = off",
        ]
        if "output_plugin_libraries" in described:
            conf.append("output_plugin_libraries = 'pgoutput, test_decoding, wal2json, shape_router, sr_bench'")
        if self.large_pages:
            # What a server with large shared_buffers is set up with: shared memory in
            # 2 MB huge pages, and glibc's malloc asking for transparent huge pages
            # (each backend's own large allocations). On this VM a process's first touch
            # of a 4 KB page costs microseconds; bench/README.md, "The start and the pages it touches".
            self.reserve_huge_pages(1280 << 20)  # 1 GB of shared buffers and the rest of shared memory
            conf.append("huge_pages = on")
            self.env = ["env", "GLIBC_TUNABLES=glibc.malloc.hugetlb=1"]
        with open(os.path.join(data, "postgresql.conf"), "a") as f:
            f.write("\n".join(conf) + "\n")
        self.pg_ctl_start()

    def pg_ctl_start(self):
        self.run(*self.env, f"{BIN}/pg_ctl", "-D", os.path.join(self.dir, "data"), "-l",
                 os.path.join(self.dir, "server.log"), "-w", "start", stdout=subprocess.DEVNULL)

    def reserve_huge_pages(self, nbytes):
        """Makes nbytes of free huge pages, adding to vm.nr_hugepages what is missing
        (given back by stop())."""
        meminfo = dict(line.split(":", 1) for line in open("/proc/meminfo"))
        size_kb = int(meminfo["Hugepagesize"].split()[0])
        free = int(meminfo["HugePages_Free"])
        need = -(-nbytes // (size_kb * 1024))
        with open("/proc/sys/vm/nr_hugepages") as f:
            total = int(f.read())
        if free >= need:
            return
        self.huge_pages_before = total
        with open("/proc/sys/vm/nr_hugepages", "w") as f:
            f.write(str(total + need - free))
        meminfo = dict(line.split(":", 1) for line in open("/proc/meminfo"))
        if int(meminfo["HugePages_Free"]) < need:
            self.give_back_huge_pages()
            raise SystemExit(f"--large-pages: the kernel could not make {need} free huge pages of {size_kb} kB")

    def give_back_huge_pages(self):
        if self.huge_pages_before is not None:
            with open("/proc/sys/vm/nr_hugepages", "w") as f:
                f.write(str(self.huge_pages_before))
            self.huge_pages_before = None

    def restart(self):
        """Stops and starts the server (its shared buffers start empty)."""
        self.run(f"{BIN}/pg_ctl", "-D", os.path.join(self.dir, "data"), "-w", "stop", stdout=subprocess.DEVNULL)
        self.pg_ctl_start()

    def psql_args(self, db="postgres"):
        return ["runuser", "-u", "postgres", "--", f"{BIN}/psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
                "-h", self.dir, "-p", str(self.port), "-d", db]

    def psql(self, *commands, db="postgres"):
        """Runs commands in one session (through stdin: option strings can be
        megabytes); returns the unaligned output lines."""
        script = "".join(statement(cmd) for cmd in commands)
        out = subprocess.run(self.psql_args(db), check=True, capture_output=True, text=True, input=script)
        return [line for line in out.stdout.splitlines() if line != ""]

    def psql_polled(self, before, watched, after, db="postgres"):
        """As psql(*before, watched, *after), polling the backend's memory (a MemoryPoller)
        from just before watched starts until its result is in; returns the output lines
        and the poller."""
        mark = "sr-bench: the statements sent so far are done"
        with tempfile.TemporaryFile("w+") as err:  # a file: notices cannot fill a pipe and stall psql
            p = subprocess.Popen(self.psql_args(db), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                                 text=True)

            def close_stdin():
                try:
                    p.stdin.close()
                except BrokenPipeError:  # psql gone with some of a statement unread
                    pass

            def failed():  # psql has stopped (ON_ERROR_STOP)
                close_stdin()
                p.wait()
                err.seek(0)
                return subprocess.CalledProcessError(p.returncode, "psql", stderr=err.read())

            def run(*commands):
                """Sends commands and a mark, returns their output lines once the mark's is in
                (psql flushes each result)."""
                try:
                    p.stdin.write("".join(statement(cmd) for cmd in (*commands, f"SELECT '{mark}'")))
                    p.stdin.flush()
                except BrokenPipeError:
                    raise failed() from None
                out = []
                for line in iter(p.stdout.readline, ""):
                    if line.rstrip("\n") == mark:
                        return out
                    if line != "\n":
                        out.append(line.rstrip("\n"))
                raise failed()

            try:
                pid, *lines = run("SELECT pg_backend_pid()", *before)
                poller = MemoryPoller(int(pid))
                poller.start()
                try:
                    lines += run(watched)
                finally:
                    poller.finish()
                # the rest at once: communicate() writes and reads together, whatever their sizes
                rest, _ = p.communicate("".join(statement(cmd) for cmd in after))
                if p.returncode != 0:
                    raise failed()
                lines += [line for line in rest.splitlines() if line != ""]
            finally:
                if p.poll() is None:  # interrupted: runuser passes SIGTERM on to psql
                    p.terminate()
                    close_stdin()
                    p.wait()
        return lines, poller

    def stop(self):
        subprocess.run(["runuser", "-u", "postgres", "--", f"{BIN}/pg_ctl", "-D", os.path.join(self.dir, "data"),
                        "-m", "immediate", "stop"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.give_back_huge_pages()
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--changes", type=int, default=1_000_000, help="workload size (default 1,000,000)")
    ap.add_argument("--users", type=int, default=100_000_000, help="user_id range of the workload")
    ap.add_argument("--max-shapes", type=int, default=1_000_000, help="largest shape set")
    ap.add_argument("--reps", type=int, default=5, help="repetitions per consumer (median reported)")
    ap.add_argument("--pgoutput-slots", type=int, default=10, help="per-shape pgoutput slots measured (then extrapolated)")
    ap.add_argument("--quick", action="store_true", help="small sizes for CI")
    ap.add_argument("--port", type=int, default=54391)
    ap.add_argument("--out", default=os.path.join(HERE, "RESULTS.md"))
    ap.add_argument("--keep", action="store_true", help="keep the cluster directory")
    a = ap.parse_args()
    if a.quick:
        a.changes, a.max_shapes, a.reps, a.pgoutput_slots = 20_000, 10_000, 1, 2
        a.users = 1_000_000
        if a.out == os.path.join(HERE, "RESULTS.md"):
            a.out = os.path.join(tempfile.gettempdir(), "shape_router_e2e_quick.md")
    run_on_cluster(a, run, write_results)


def add_common_args(ap, port, out):
    """The options every harness takes: --quick, --port, --out (default bench/<out>), --keep."""
    ap.add_argument("--quick", action="store_true", help="small sizes for CI")
    ap.add_argument("--port", type=int, default=port)
    ap.add_argument("--out", default=os.path.join(HERE, out))
    ap.add_argument("--keep", action="store_true", help="keep the cluster directory")


def quick_out(a, out, quick_name):
    """With --quick and no --out, results go to a temporary file, not bench/<out>."""
    if a.out == os.path.join(HERE, out):
        a.out = os.path.join(tempfile.gettempdir(), quick_name)


def run_on_cluster(a, run, write):
    """Runs run(cluster, args) on a throwaway cluster, then write(args, results, seconds)."""
    if os.geteuid() != 0:
        sys.exit("run as root (the cluster runs as the postgres user)")
    started = time.time()
    c = Cluster(a.port, a.keep, getattr(a, "large_pages", False))
    try:
        c.start()
        results = run(c, a)
        write(a, results, time.time() - started)
        log(f"wrote {a.out}")
    finally:
        c.stop()


def measure(c, slot, kind, opts, is_shape_router, reps, start_lsn):
    """A consumer's median run of reps (fresh backends each), with its CPU spread
    and the median CPU of decoding only up to start_lsn (its start)."""
    samples = [consume(c, slot, kind, opts, is_shape_router) for _ in range(reps)]
    cpu = [x["cpu_us"] for x in samples]
    best = sorted(samples, key=lambda x: x["cpu_us"])[len(samples) // 2]
    best["cpu_median_us"] = statistics.median(cpu)
    best["cpu_min_us"], best["cpu_max_us"] = min(cpu), max(cpu)
    best["start_cpu_us"] = statistics.median(
        consume(c, slot, kind, opts, False, upto=start_lsn)["cpu_us"] for _ in range(reps))
    return best


MEMORY_BASELINE = "shape_router, S = 0, same-length `shapes` option (memory baseline)"


def shape_sets(max_shapes):
    sets = [0, 1, 100, 10_000, 1_000_000]
    return [s for s in sets if s <= max_shapes]


def run(c, a):
    r = {"consumers": {}, "facts": {}}
    c.psql("CREATE EXTENSION shape_router", "CREATE EXTENSION sr_bench")
    c.psql("""CREATE TABLE todos (id bigserial PRIMARY KEY, user_id int NOT NULL, status text NOT NULL,
              priority int, title text, updated_at timestamptz DEFAULT now())""",
           "ALTER TABLE todos REPLICA IDENTITY FULL",
           "CREATE TABLE other (id bigserial PRIMARY KEY, v text)")

    # Shapes: user_id = k for k in 1..max (the S sets are prefixes), a mix, scan shapes, an always-match shape.
    t0 = time.time()
    chunk = 100_000
    for lo in range(1, a.max_shapes + 1, chunk):
        hi = min(lo + chunk - 1, a.max_shapes)
        c.psql(f"SELECT count(*) FROM shape_router.register_shapes('todos', "
               f"(SELECT array_agg('user_id = ' || g) FROM generate_series({lo}, {hi}) g))")
    reg_seconds = time.time() - t0
    # What autovacuum (off here, for steady timings) would soon do after a bulk
    # registration: the catalog's row estimate lets the plugin size its tables once.
    c.psql("VACUUM ANALYZE shape_router.shape_catalog")
    r["facts"]["registration_rate"] = a.max_shapes / reg_seconds if reg_seconds > 0 else 0
    r["facts"]["registration_seconds"] = reg_seconds
    ids = {}
    ids["user"] = c.psql("SELECT min(shape_id), max(shape_id) FROM shape_router.shapes")[0].split("|")
    mix = c.psql(
        "SELECT array_to_string(array_agg(id), ',') FROM ("
        " SELECT shape_router.register_shape('todos', format('user_id = %s AND status = ''open''', g)) AS id FROM generate_series(1, 300) g"
        " UNION ALL SELECT shape_router.register_shape('todos', format('user_id IN (%s, %s, %s)', g, g + 1000, g + 2000)) FROM generate_series(1, 100) g"
        " UNION ALL SELECT shape_router.register_shape('todos', format('priority BETWEEN %s AND %s AND user_id < 1000000', g, g + 1)) FROM generate_series(1, 50) g"
        " UNION ALL SELECT shape_router.register_shape('todos', format('title LIKE ''%s%%''', md5(g::text))) FROM generate_series(1, 50) g) s")[0]
    everything = c.psql("SELECT shape_router.register_shape('todos')")[0]

    # Slots, all before the workload.
    consumers = []
    consumers.append(("floor (no-op plugin)", "sr_bench", "text", []))
    consumers.append(("test_decoding", "test_decoding", "text", ["skip-empty-xacts", "1"]))
    consumers.append(("wal2json (format 2)", "wal2json", "text", ["format-version", "2"]))
    c.psql("CREATE PUBLICATION pub_all FOR TABLE todos, other",
           "CREATE PUBLICATION pub_filter FOR TABLE todos WHERE (user_id = 42)")
    consumers.append(("pgoutput, no filter", "pgoutput", "binary", ["proto_version", "1", "publication_names", "pub_all"]))
    consumers.append(("pgoutput, row filter user_id = 42", "pgoutput", "binary",
                      ["proto_version", "1", "publication_names", "pub_filter"]))
    first_user = int(ids["user"][0])
    for s in shape_sets(a.max_shapes):
        # The first s shapes user_id = 1..s (ids written with 10 digits); S = 0: a shape that does not exist.
        subset = ",".join(f"{first_user + k:010d}" for k in range(s)) if s > 0 else "999999999"
        consumers.append((f"shape_router, S = {s:,} (user_id = k)", "shape_router", "text", ["shapes", subset]))
    # The memory baseline: S = 0 again, but with a `shapes` option exactly as long as the
    # largest set's (max_shapes ids that do not exist, also 10 digits): the backend then
    # holds the same option text (a query string, its parse tree, the options list, the
    # parsed ids) and scans the same catalog, so that the difference is the shapes alone.
    baseline = ",".join(f"{9_000_000_000 + k:010d}" for k in range(a.max_shapes))
    consumers.append((MEMORY_BASELINE, "shape_router", "text", ["shapes", baseline]))
    consumers.append(("shape_router, mix (residuals, IN, 100 scan)", "shape_router", "text", ["shapes", mix]))
    consumers.append(("shape_router, every change matches (emission)", "shape_router", "text", ["shapes", everything]))

    slot_of = {}
    for i, (name, plugin, kind, opts) in enumerate(consumers):
        slot = f"s{i}"
        slot_of[name] = slot
        c.psql(f"SELECT 'x' FROM pg_create_logical_replication_slot('{slot}', '{plugin}')")
    # Per-shape pgoutput slots: one publication with one row filter each.
    for k in range(1, a.pgoutput_slots + 1):
        c.psql(f"CREATE PUBLICATION pub_u{k} FOR TABLE todos WHERE (user_id = {k})",
               f"SELECT 'x' FROM pg_create_logical_replication_slot('pu{k}', 'pgoutput')")

    # One change before the workload: decoding up to it measures a consumer's start
    # (for shape_router: loading the shapes and building the index) on its own.
    c.psql("INSERT INTO other (v) VALUES ('start marker')")
    start_lsn = c.psql("SELECT pg_current_wal_lsn()")[0]

    # Workload: transactions of 100 changes: 60 todos inserts, 10 inserts into a table
    # no shape watches, 20 updates (a quarter change user_id: moves), 10 deletes.
    log(f"workload: {a.changes:,} changes")
    t0 = time.time()
    c.psql(f"""CREATE PROCEDURE workload(n_txn int, users int) LANGUAGE plpgsql AS $$
      DECLARE base bigint;
      BEGIN
        PERFORM setseed(0.42);
        FOR t IN 1..n_txn LOOP
          INSERT INTO todos (user_id, status, priority, title)
            SELECT 1 + floor(random() * users)::int, (ARRAY['open','done','new'])[1 + floor(random() * 3)::int],
                   floor(random() * 100)::int, md5(random()::text)
              FROM generate_series(1, 60);
          INSERT INTO other (v) SELECT md5(random()::text) FROM generate_series(1, 10);
          base := currval('todos_id_seq') - 60;
          UPDATE todos SET status = 'done', priority = priority + 1,
                 user_id = CASE WHEN id % 4 = 0 THEN 1 + floor(random() * users)::int ELSE user_id END
           WHERE id > base AND id <= base + 20;
          DELETE FROM todos WHERE id > base + 20 AND id <= base + 30;
          COMMIT;
        END LOOP;
      END $$""")
    c.psql(f"CALL workload({a.changes // 100}, {a.users})")
    r["facts"]["workload_seconds"] = time.time() - t0
    r["facts"]["changes"] = a.changes

    # Consume: each consumer in fresh backends, median of reps.
    for name, plugin, kind, opts in consumers:
        best = measure(c, slot_of[name], kind, opts, plugin == "shape_router", a.reps, start_lsn)
        r["consumers"][name] = best
        log(f"{name}: {best['cpu_median_us'] / 1e6:.2f} s CPU, {best['messages']:,} messages, {best['bytes']:,} bytes")

    # pgoutput with one slot per shape: S slots decode the WAL S times.
    per_slot = []
    for k in range(1, a.pgoutput_slots + 1):
        x = consume(c, f"pu{k}", "binary", ["proto_version", "1", "publication_names", f"pub_u{k}"], False)
        per_slot.append(x["cpu_us"])
    r["facts"]["pgoutput_per_shape_slot_us"] = statistics.median(per_slot)
    r["facts"]["pgoutput_slots_measured"] = a.pgoutput_slots

    # Start: time to the first record with every shape registered.
    big = slot_of[f"shape_router, S = {a.max_shapes:,} (user_id = k)"]
    first = c.psql("CREATE TEMP TABLE t0 AS SELECT clock_timestamp() AS t",
                   f"SELECT count(*) FROM pg_logical_slot_peek_changes('{big}', NULL, 1)",
                   "SELECT extract(epoch FROM clock_timestamp() - (SELECT t FROM t0))")
    r["facts"]["first_record_seconds"] = float(first[-1])
    return r


def consume(c, slot, kind, opts, is_shape_router, upto=None, stats_sql=None, nchanges=None):
    """One read of slot, its CPU, peak RSS and peak private memory (RssAnon, polled over the
    read); with is_shape_router (or stats_sql, a query of one json row run in the same
    session), also the session's stats (out["stats"])."""
    if stats_sql is None and is_shape_router:
        stats_sql = "SELECT row_to_json(s) FROM shape_router.decoding_stats() s"
    fn = "pg_logical_slot_peek_binary_changes" if kind == "binary" else "pg_logical_slot_peek_changes"
    length = "octet_length(data)" if kind == "binary" else "octet_length(data)"
    opt_sql = "".join(f", '{o}'" for o in opts)
    upto_sql = f"'{upto}'" if upto else "NULL"
    nchanges_sql = str(nchanges) if nchanges else "NULL"
    rusage = "SELECT user_us + system_us, max_rss_kb FROM bench_rusage()"
    lines, mem = c.psql_polled(
        [rusage], f"SELECT count(*), coalesce(sum({length}), 0) FROM {fn}('{slot}', {upto_sql}, {nchanges_sql}{opt_sql})",
        [rusage, *([stats_sql] if stats_sql else [])])
    before_cpu, before_rss = map(int, lines[0].split("|"))
    messages, nbytes = map(int, lines[1].split("|"))
    after_cpu, after_rss = map(int, lines[2].split("|"))
    out = {"cpu_us": after_cpu - before_cpu, "messages": messages, "bytes": nbytes,
           "rss_kb": after_rss, "rss_growth_kb": after_rss - before_rss,
           # the backend's private memory at its peak over the read (parsing the statement included)
           "anon_peak_kb": mem.anon_peak_kb, "shmem_kb": mem.shmem_kb, "anon_samples": mem.samples}
    if stats_sql:
        out["stats"] = lines[3]
    return out


def write_results(a, r, elapsed):
    cons = r["consumers"]
    floor = cons["floor (no-op plugin)"]["cpu_median_us"]
    # Routing figures compare costs after the start: each consumer's minus the floor's.
    floor_routing = floor - cons["floor (no-op plugin)"]["start_cpu_us"]
    n = r["facts"]["changes"]
    commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    cpu_model = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu_model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    lines = []
    w = lines.append
    w("# End-to-end benchmark results")
    w("")
    w(f"Run {datetime.datetime.utcnow().strftime('%Y-%m-%d %H:%M UTC')}, commit {commit}, "
      f"{os.cpu_count()} CPUs ({cpu_model}), {platform.platform()}, PostgreSQL {c_version()}.")
    w(f"Command: `python3 bench/e2e.py{' --quick' if a.quick else ''}` ({elapsed / 60:.1f} min in all).")
    w("")
    w(f"Workload: {n:,} changes in transactions of 100 (60 inserts and 20 updates (a quarter move user_id) "
      f"and 10 deletes on `todos`, 10 inserts on a table no shape watches); user_id uniform over 1..{a.users:,}; "
      f"generated in {r['facts']['workload_seconds']:.0f} s. Every slot was created before the workload: all consumers "
      f"decode the same WAL. CPU = user + system time of the backend running `pg_logical_slot_peek_*changes`, "
      f"median of {a.reps} (min–max beside it). The floor is a no-op output plugin (`bench/floor`): PostgreSQL's own "
      f"decoding cost.")
    w("")
    w("| consumer | CPU s (min–max) | × floor | µs/change above floor | start CPU s | routing × floor | routing µs/change above floor | messages | output bytes | peak RSS MB |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, x in cons.items():
        cpu = x["cpu_median_us"]
        routing = cpu - x["start_cpu_us"]
        start_cols = f"{x['start_cpu_us'] / 1e6:.2f} | {routing / floor_routing:.2f} | {(routing - floor_routing) / n:.3f}"
        w(f"| {name} | {cpu / 1e6:.2f} ({x['cpu_min_us'] / 1e6:.2f}–{x['cpu_max_us'] / 1e6:.2f}) | "
          f"{cpu / floor:.2f} | {(cpu - floor) / n:.3f} | {start_cols} | {x['messages']:,} | {x['bytes']:,} | {x['rss_kb'] / 1024:.0f} |")
    w("")
    w("Start CPU: the median CPU of decoding only up to one change written before the workload, in a fresh backend "
      "(for shape_router: loading its shapes and building the routing index). Routing = CPU minus start CPU, the cost "
      "of the changes themselves, compared with the floor's own CPU minus its start.")
    w("")
    em = cons.get("shape_router, every change matches (emission)")
    if em:
        records = max(1, em["messages"])
        w(f"Emission: {records:,} messages; {(em['cpu_median_us'] - em['start_cpu_us'] - floor_routing) / records:.3f} µs of CPU per message above the floor "
          f"(test_decoding: {(cons['test_decoding']['cpu_median_us'] - floor) / max(1, cons['test_decoding']['messages']):.3f} µs, "
          f"wal2json: {(cons['wal2json (format 2)']['cpu_median_us'] - floor) / max(1, cons['wal2json (format 2)']['messages']):.3f} µs per message).")
        w("")
    per = r["facts"]["pgoutput_per_shape_slot_us"]
    w(f"pgoutput with one slot (and one row-filter publication) per shape: median {per / 1e6:.2f} s CPU per slot over "
      f"{r['facts']['pgoutput_slots_measured']} slots; extrapolated linearly: S = 100 → {100 * per / 1e6:.1f} s. "
      f"shape_router with S = 100 on one slot: "
      f"{cons.get('shape_router, S = 100 (user_id = k)', {}).get('cpu_median_us', float('nan')) / 1e6:.2f} s.")
    w("")
    w(f"Registration: {a.max_shapes:,} shapes through `register_shapes` in {r['facts']['registration_seconds']:.1f} s "
      f"({r['facts']['registration_rate']:,.0f} shapes/s).")
    w("")
    w("Records spread over many shapes, pollers and emission on its own have harnesses of their own: "
      "`bench/spread.py` (`SPREAD.md`), `bench/poll.py` (`POLL.md`) and `bench/emit.py` (`EMIT.md`).")
    w("")
    w(f"Start: first record {r['facts']['first_record_seconds']:.2f} s after `pg_logical_slot_peek_changes` began, with "
      f"{a.max_shapes:,} shapes registered (includes loading them and building the index).")
    w("")
    # The targets, judged from this run's figures.
    w("Targets (issue: end-to-end benchmark), judged from this run:")
    w("")
    w("| target | measured | met |")
    w("|---|---|---|")
    big = cons.get(f"shape_router, S = {a.max_shapes:,} (user_id = k)")
    if big:
        routing = big["cpu_median_us"] - big["start_cpu_us"]
        ratio = routing / floor_routing
        w(f"| routing, S = {a.max_shapes:,}, ~1% matching: ≤ 1.5× floor | {ratio:.2f}× after the start ({(routing - floor_routing) / n:.3f} µs/change above); "
          f"{big['cpu_median_us'] / floor:.2f}× with the start | {'yes' if ratio <= 1.5 else 'no'} |")
    if em:
        per_record = (em["cpu_median_us"] - em["start_cpu_us"] - floor_routing) / max(1, em["messages"])
        w(f"| emission: ≤ 1.0 µs CPU per record above floor | {per_record:.3f} µs | {'yes' if per_record <= 1.0 else 'no'} |")
    s100 = cons.get("shape_router, S = 100 (user_id = k)")
    if s100:
        factor = 100 * per / s100["cpu_median_us"]
        w(f"| vs per-shape pgoutput slots at S = 100: ≥ 50× less CPU | {factor:.0f}× | {'yes' if factor >= 50 else 'no'} |")
    s0 = cons.get("shape_router, S = 0 (user_id = k)")
    base = cons.get(MEMORY_BASELINE)
    if big and s0 and base:
        per_shape = (big["rss_kb"] - base["rss_kb"]) * 1024 / a.max_shapes
        raw = (big["rss_kb"] - s0["rss_kb"]) * 1024 / a.max_shapes
        w(f"| memory: ≤ 64 bytes per shape, all included | {per_shape:.0f} bytes (peak RSS at S = {a.max_shapes:,} minus the memory baseline, "
          f"which holds the same `shapes` option text); {raw:.0f} bytes minus S = 0 with a one-id option | {'yes' if per_shape <= 64 else 'no'} |")
    w(f"| start: first record ≤ 1 s with 1,000,000 shapes | {r['facts']['first_record_seconds']:.2f} s with {a.max_shapes:,} | {'yes' if r['facts']['first_record_seconds'] <= 1 and a.max_shapes >= 1_000_000 else 'no'} |")
    w(f"| registration: ≥ 50,000 shapes/s | {r['facts']['registration_rate']:,.0f} /s | {'yes' if r['facts']['registration_rate'] >= 50_000 else 'no'} |")
    w("")
    w("Funnel counters of the shape_router runs (`shape_router.decoding_stats()` after the run):")
    w("")
    for name, x in cons.items():
        if "stats" in x:
            w(f"- {name}: `{x['stats']}`")
    with open(a.out, "w") as f:
        f.write("\n".join(lines) + "\n")


def c_version():
    out = subprocess.run([f"{BIN}/postgres", "--version"], capture_output=True, text=True).stdout.strip()
    found = re.search(r"\(PostgreSQL\) (\S+)", out)  # "postgres (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)"
    return found.group(1) if found else "?"


if __name__ == "__main__":
    main()
