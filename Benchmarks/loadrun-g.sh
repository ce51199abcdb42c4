#!/usr/bin/env bash
# Scenario G of the load run (issue 12): GB/T 32960 units against horgosd's GB/T 32960 listener.
#
#   Benchmarks/loadrun.sh --scenarios G [--smoke] [--duration S] [--vehicles N] [--configuration C]
#   (loadrun.sh hands `--scenarios G` to this script; it can also be run directly)
#
# Two runs, each on a fresh state directory: G1 vehicle mode (N vehicles, one TLS connection and
# certificate each, realtime every second, every unit reconnecting every 20 reports and reissuing
# what was unanswered) and G2 platform mode (the same fleet over 4 gateway-certificate platforms).
# For each: the daemon's CPU from /proc/PID/stat around the traffic, SIGTERM (must exit 0), then the
# `telemetry` rows counted in the shards with the sqlite3 CLI. HORGOS_LOADRUN_GBT_EDITION=2025 runs the
# units in the 2025 edition (`horgos-sim --gbt-edition 2025`). Passes when rows stored = frames the
# simulator saw answered success, with 0 errors and 0 unanswered frames.
set -euo pipefail
cd "$(dirname "$0")/.."

configuration=release
scratch=""
build=1
smoke=0
duration=""
vehicles=""
while [ $# -gt 0 ]; do
    case "$1" in
        --configuration) configuration="$2"; shift 2 ;;
        --scratch-path) scratch="$2"; shift 2 ;;
        --no-build) build=0; shift ;;
        --smoke) smoke=1; shift ;;
        --duration) duration="$2"; shift 2 ;;
        --vehicles) vehicles="$2"; shift 2 ;;
        --scenarios) shift 2 ;;
        *) shift ;;
    esac
done
if [ -z "$scratch" ]; then
    if [ "$configuration" = release ]; then scratch=.build-release; else scratch=.build; fi
fi
command -v sqlite3 >/dev/null 2>&1 || { echo "loadrun G: the sqlite3 CLI is missing (apt-get install sqlite3)" >&2; exit 2; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$build" = 1 ]; then
    for product in horgosd horgos-sim; do
        swift build -c "$configuration" --scratch-path "$scratch" --product "$product" >&2
    done
fi
bin="$(swift build -c "$configuration" --scratch-path "$scratch" --show-bin-path)"

exec python3 - "$bin" "$smoke" "${duration:-}" "${vehicles:-}" <<'PYTHON'
import glob, json, os, shutil, socket, subprocess, sys, tempfile, time, urllib.request

bin_dir, smoke = sys.argv[1], sys.argv[2] == "1"
duration = float(sys.argv[3]) if sys.argv[3] else (5 if smoke else 40)
vehicles = int(sys.argv[4]) if sys.argv[4] else (50 if smoke else 2000)

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]

def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

def run(name, platforms):
    state = tempfile.mkdtemp(prefix=f"horgos-loadrun-{name}-")
    tport, aport, gport = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HORGOS_")}
    env.update(HORGOS_STATE_DIRECTORY=state, HORGOS_LISTEN_TELEMETRY=f"127.0.0.1:{tport}",
               HORGOS_LISTEN_ADMIN=f"127.0.0.1:{aport}", HORGOS_LISTEN_GBT32960=f"127.0.0.1:{gport}",
               HORGOS_LIMITS_MAX_CONNECTIONS="1000000", HORGOS_LIMITS_MAX_CONNECTIONS_PER_ADDRESS="1000000")
    log = open(f"{state}/horgosd.log", "w")
    daemon = subprocess.Popen([f"{bin_dir}/horgosd"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=state)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{aport}/health", timeout=1).status == 200: break
        except Exception:
            time.sleep(0.1)
    time.sleep(0.5)  # the GB/T listener binds beside the others
    args = [f"{bin_dir}/horgos-sim", "--protocol", "gbt32960", "--gbt32960-port", str(gport), "--pki", f"{state}/pki",
            "--vehicles", str(vehicles), "--gateways", str(platforms), "--duration", str(duration),
            "--reconnect-every", "0" if platforms else "20", "--regions", "AE,SA,MX,BR,DE,TH", "--json",
            "--drain-timeout", "30", "--gbt-edition", os.environ.get("HORGOS_LOADRUN_GBT_EDITION", "2016")]
    cpu_before, wall_before = cpu_seconds(daemon.pid), time.time()
    sim = subprocess.run(args, capture_output=True, text=True)
    cpu, wall = cpu_seconds(daemon.pid) - cpu_before, time.time() - wall_before
    daemon.terminate()
    exit_code = daemon.wait(timeout=60)
    report = json.loads(sim.stdout) if sim.stdout.strip() else {}
    stored = 0
    for path in glob.glob(f"{state}/??/telemetry-*.sqlite"):
        stored += int(subprocess.run(["sqlite3", path, "SELECT count(*) FROM telemetry"], capture_output=True,
                                     text=True).stdout.strip() or 0)
    answered = report.get("framesAnswered", -1)
    ok = (exit_code == 0 and sim.returncode == 0 and stored == answered and not report.get("errors")
          and report.get("outstandingFrames", 1) == 0)
    print(f"{name} {'platforms' if platforms else 'vehicles'} {vehicles} veh/{report.get('connections')} conn: "
          f"{stored} rows stored, {answered} frames answered success, {report.get('outstandingFrames')} unanswered, "
          f"{report.get('reissued')} reissued, "
          f"{stored / wall:.0f} records/s over {wall:.1f} s, daemon {cpu:.2f} CPU-s = {cpu / max(stored, 1) * 1e6:.0f} µs "
          f"CPU per record, answer p99 {report.get('answerLatencyP99Ms', 0):.1f} ms, errors {report.get('errors')}, "
          f"exit {exit_code}: {'ok' if ok else 'FAILED'}")
    if not ok: open(f"{state}/horgos-sim.json", "w").write(sim.stdout)
    if ok: shutil.rmtree(state, ignore_errors=True)
    else: print(f"  state and log kept in {state}; simulator stderr: {sim.stderr[-500:]}")
    return ok

only = os.environ.get("HORGOS_LOADRUN_G")
results = [run(n, p) for n, p in (("G1", 0), ("G2", 4)) if not only or only == n]
if all(results):
    print("loadrun G: ok (stored = acknowledged, 0 errors)")
else:
    print("loadrun G: FAILED"); sys.exit(1)
PYTHON
