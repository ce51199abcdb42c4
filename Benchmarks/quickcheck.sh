#!/usr/bin/env bash
# What the periodic integrity check (issue 26, store.integrity_check_interval_seconds) costs: PRAGMA
# quick_check of day files, timed through the sqlite3 CLI (the same system libsqlite3 the daemon links),
# on a read-only connection as the daemon's check runs it.
#
#   Benchmarks/quickcheck.sh FILE...          # e.g. a state directory left by Benchmarks/restartloop.sh --keep
#
# For each file: its size, the best and the median wall time of 5 runs (the page cache warm after the
# first, as on a node whose current day file is being written), the median CPU time (user + system of the
# sqlite3 process: the figure a busy machine does not distort), and the CPU share the check costs per
# region at the default interval (300 s). The daemon exports the same duration per region as
# horgos_region_integrity_check_seconds.
set -euo pipefail
[ $# -gt 0 ] || { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 2; }
command -v sqlite3 >/dev/null || { echo "quickcheck: needs the sqlite3 CLI (apt-get install sqlite3)" >&2; exit 2; }
python3 - "$@" <<'PY'
import os, resource, statistics, subprocess, sys, time
for path in sys.argv[1:]:
    size = os.path.getsize(path) + (os.path.getsize(path + "-wal") if os.path.exists(path + "-wal") else 0)
    runs, cpus = [], []
    for _ in range(5):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        began = time.monotonic()
        out = subprocess.run(["sqlite3", "-readonly", path, "PRAGMA quick_check"], capture_output=True, text=True)
        runs.append(time.monotonic() - began)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if out.stdout.strip() != "ok": sys.exit(f"quickcheck: {path}: {out.stdout.strip()[:200]} {out.stderr.strip()}")
    cpu = statistics.median(cpus)
    print(f"{path}: {size / 2**20:8.1f} MiB  wall best {min(runs):6.2f} s median {statistics.median(runs):6.2f} s  "
          f"CPU median {cpu:6.2f} s ({size / 2**20 / cpu:5.0f} MiB per CPU-s)  "
          f"{100 * cpu / 300:5.2f} % of a core at one check per 300 s")
PY
