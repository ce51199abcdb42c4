#!/usr/bin/env bash
# Restart time through a crash loop (issue 26): horgosd under gateway load, killed with SIGKILL again and
# again; each start is timed from exec to GET /health answering 200 (listeners bound, store open).
#
#   Benchmarks/restartloop.sh                         # release build, 13 kills, 4 s of load between them
#   Benchmarks/restartloop.sh --kills 13 --uptime 4 --no-build --scratch-path .build-release
#   Benchmarks/restartloop.sh --horgosd /path/to/older/horgosd   # the same loop against another build
#
# Options:
#   --kills N          kills in a row after the first start (default 13): N restarts are timed
#   --uptime S         seconds each start runs under load after /health answers, before the kill (default 4)
#   --gateways N       horgos-sim gateways (default 8), --vehicles N (default 4000), --records-per-frame N
#                      (default 50): as fast as ACKs allow, so the journal grows as fast as the node takes it
#   --horgosd PATH     time this horgosd binary instead of the one built here (horgos-sim comes from the build)
#   --no-build         use the binaries already built; --scratch-path DIR (default .build-release)
#   --configuration C  release (default) or debug (e.g. --configuration debug --scratch-path .build
#                      --no-build: the test build's binaries; slower starts, the same ratio question)
#   --keep             keep the state directory and logs
#
# One state directory for the whole loop (the journal and shards carry over, as under systemd's
# Restart=); horgos-sim runs through all of it and reconnects after each kill. Printed per restart: the
# seconds to /health 200, and what the start read of the journal (its "journal: N segment(s): R read,
# S skipped" line, or the older "N segment(s) read, E entries"). The last line is the figure the issue
# asks for: the slowest restart against the first. No assertion: a measurement (BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/.."

scratch=.build-release
build=1
configuration=release
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --scratch-path) scratch="$2"; shift 2 ;;
        --no-build) build=0; shift ;;
        --configuration) configuration="$2"; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) args+=("$1"); shift ;;
    esac
done
if [ "$build" = 1 ]; then
    swift build -c "$configuration" --scratch-path "$scratch" --product horgosd >&2
    swift build -c "$configuration" --scratch-path "$scratch" --product horgos-sim >&2
fi
bin_dir=$(swift build -c "$configuration" --scratch-path "$scratch" --show-bin-path)

python3 - "$bin_dir" "${args[@]}" <<'PY'
import json, os, re, shutil, signal, socket, subprocess, sys, tempfile, time, urllib.request

bin_dir = sys.argv[1]
opts = dict(kills=13, uptime=4.0, gateways=8, vehicles=4000, rpf=50, horgosd=f"{bin_dir}/horgosd", keep=False)
argv = sys.argv[2:]
while argv:
    key = argv.pop(0)
    if key == "--keep": opts["keep"] = True; continue
    name = key.lstrip("-").replace("-", "_")
    if name == "records_per_frame": name = "rpf"
    if name not in opts or not argv: sys.exit(f"restartloop: unknown option {key}")
    opts[name] = type(opts[name])(argv.pop(0))

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]

state = tempfile.mkdtemp(prefix="horgos-restartloop-")
tport, aport, gport = free_port(), free_port(), free_port()
env = {k: v for k, v in os.environ.items() if not k.startswith("HORGOS_")}
env.update(HORGOS_STATE_DIRECTORY=state, HORGOS_LISTEN_TELEMETRY=f"127.0.0.1:{tport}",
           HORGOS_LISTEN_ADMIN=f"127.0.0.1:{aport}", HORGOS_LISTEN_GBT32960=f"127.0.0.1:{gport}")

def healthy():
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{aport}/health", timeout=1) as r: return r.status == 200
    except Exception:
        return False

def start(index):
    log = open(f"{state}/horgosd-{index}.log", "w")
    began = time.monotonic()
    daemon = subprocess.Popen([opts["horgosd"]], env=env, stdout=log, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, cwd=state)
    while not healthy():
        if daemon.poll() is not None: sys.exit(f"restartloop: horgosd exited {daemon.returncode}; see {log.name}")
        if time.monotonic() - began > 300: sys.exit("restartloop: no /health 200 within 300 s")
        time.sleep(0.01)
    return daemon, time.monotonic() - began, log.name

def journal_line(path):
    with open(path) as f:
        for line in f:
            m = re.search(r"journal: (\d+ segment\(s\)[^\"]*?)(?:\"|$| component)", line)
            if m: return m.group(1).strip().rstrip(",")
    return "-"

daemon, first_start, _ = start(0)
sim = subprocess.Popen([f"{bin_dir}/horgos-sim", "--port", str(tport), "--pki", f"{state}/pki",
                        "--gateways", str(opts["gateways"]), "--vehicles", str(opts["vehicles"]),
                        "--interval-ms", "0", "--records-per-frame", str(opts["rpf"]),
                        "--duration", str(int((opts["kills"] + 1) * (opts["uptime"] + 15))), "--quiet"],
                       stdout=subprocess.DEVNULL, stderr=open(f"{state}/horgos-sim.log", "w"))
rows = []
for kill in range(1, opts["kills"] + 1):
    time.sleep(opts["uptime"])
    journal_bytes = sum(os.path.getsize(f"{state}/journal/{n}") for n in os.listdir(f"{state}/journal")
                        if n.endswith(".log"))
    daemon.send_signal(signal.SIGKILL); daemon.wait()
    daemon, seconds, log = start(kill)
    rows.append(dict(restart=kill, seconds=round(seconds, 3), journalBytesAtKill=journal_bytes,
                     journal=journal_line(log)))
    print(f"restart {kill:2d}: {seconds:6.2f} s to /health 200; journal at the kill {journal_bytes >> 20} MiB; "
          f"{rows[-1]['journal']}", flush=True)
sim.terminate(); sim.wait()
daemon.send_signal(signal.SIGTERM); daemon.wait()
times = [r["seconds"] for r in rows]
print(f"first start {first_start:.2f} s; restarts: first {times[0]:.2f} s, slowest {max(times):.2f} s "
      f"({max(times) / times[0]:.2f}x the first), median {sorted(times)[len(times) // 2]:.2f} s")
print(json.dumps(dict(horgosd=opts["horgosd"], kills=opts["kills"], uptime=opts["uptime"], restarts=rows)))
if opts["keep"]:
    print(f"kept {state}")
else:
    shutil.rmtree(state, ignore_errors=True)
PY
