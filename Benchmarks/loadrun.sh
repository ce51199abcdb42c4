#!/usr/bin/env bash
# The end-to-end load run (issue 7): horgosd against horgos-sim over mutual TLS on loopback, one table.
#
#   Benchmarks/loadrun.sh                      # build release, floor benchmark, scenarios A B C D E (~40 s each)
#   Benchmarks/loadrun.sh --smoke              # a few seconds, small fleets, A, B and E; asserts correctness only
#   Benchmarks/loadrun.sh --scenarios A,C --duration 30
#
# Options:
#   --smoke                 small fleets, a few seconds, scenarios A, B and E; exits non-zero unless every
#                           scenario landed exactly the records the client saw acknowledged (minus the
#                           ones the server acknowledged as rejected), with 0 errors and a clean exit
#                           of the daemon. Never a speed assertion.
#   --scenarios A,B,C,D,E   which scenarios (default all; smoke: A,B,E)
#   --duration S            seconds of traffic per scenario (default 40; smoke 5)
#   --connections N         scenario C's target (default 50000, capped by RLIMIT_NOFILE, see below)
#   --daemon-env K=V        a horgosd setting for every scenario (repeatable), e.g.
#                           --daemon-env HORGOS_STORE_COMMIT_INTERVAL_MS=10
#   --vehicles N            scenario B's fleet (default 10000; one connection per vehicle)
#   --connect-rate N        new connections per second while the simulator ramps up (default: the
#                           simulator's 2,000/s; scenarios B and C: 500/s, since 2,000 handshakes/s on top of
#                           the simulator's own saturate 2 cores and the ramp's latencies drown the steady state)
#   --durability D          override every scenario's store durability (disk or process)
#   --profile               record a perf (cpu-clock) profile of horgosd during each scenario's traffic
#                           and print its top functions (needs `perf`)
#   --json-out FILE         also write every figure as JSON
#   --keep                  keep the state directories and logs (printed at the end)
#   --no-build              use the binaries already built
#   --configuration C       release (default) or debug (a smoke right after `swift test` can reuse its build)
#   --scratch-path DIR      SwiftPM scratch path (default .build-release for release, .build for debug)
#
# Scenarios (issue 7):
#   A  gateway mode: 10,000 vehicles over 20 gateway connections, 50 records per frame, as fast as acks allow
#   B  vehicle mode: 10,000 vehicles, one connection each, 1 record per frame every second
#   C  connection scale: vehicle connections from 127.0.0.2-127.0.0.9 (past the ephemeral port limit
#      of one source address), 1 record every 10 s; target 50,000, capped by the open-file limit
#   D  scenario A with store durability = process
#   G  GB/T 32960 units (vehicles and platforms) on the GB/T 32960 listener (Benchmarks/loadrun-g.sh,
#      run after the others when G is in --scenarios, e.g. --scenarios A,E,G; not in the default set)
#   E  vehicle mode at 10 Hz (issue 11): 1,000 vehicles, one connection each, 1 record per frame every 100 ms
#   AS, ES, ER  issue 20: A and E with every journal entry published to a NATS JetStream stream (R=3, a
#      3-node nats-server cluster the script starts on loopback ports and stops at the end), ER with
#      store.durability = replicated (ACK after JetStream's ack). Only when named:
#      Benchmarks/loadrun.sh --scenarios A,AS,E,ES,ER   # the issue's comparisons in one run (a summary follows)
#
# For each: a fresh temporary state directory, horgosd started and waited for (GET /health on the
# admin port), horgos-sim --json, the daemon's CPU (utime + stime from /proc/PID/stat) sampled before
# and after the traffic, its RSS sampled every 250 ms and VmHWM read at the end, SIGTERM (must exit 0),
# then the rows counted in the shards with the sqlite3 CLI (<state>/<CC>/telemetry-*.sqlite, table
# `telemetry`; duplicates from the registries, <state>/<CC>/registry.sqlite, vehicles.duplicates).
# Issue 11's columns: the bytes horgosd wrote to disk per record landed (`write_bytes` of /proc/PID/io from
# before the simulator starts to the daemon's exit, read before it is reaped, so the shutdown's checkpoint
# counts) and its CPU per record in the measured phase only (utime + stime sampled when horgos-sim says
# every unit is connected and again when the drain starts; records = those the simulator saw ACKed in
# between), so the handshakes of the ramp stay out.
# The floor comes from horgos-bench-floor (Benchmarks/FloorBenchmark) run in the same invocation.
set -euo pipefail
cd "$(dirname "$0")/.."

# Scenario G (GB/T 32960 units, issue 12) is its own script: `--scenarios G` runs only it; a list with G
# and others (`--scenarios A,E,G`) runs the others here, then G with the same options and binaries.
case " $* " in *" --scenarios G "*|*" --scenarios g "*) exec Benchmarks/loadrun-g.sh "$@" ;; esac
with_g=0
arguments=()
while [ $# -gt 0 ]; do
    if [ "$1" = --scenarios ] && [ $# -gt 1 ]; then
        list=$(printf '%s' "$2" | tr 'g' 'G')
        case ",$list," in *,G,*) with_g=1; list=$(printf '%s' ",$list," | sed 's/,G,/,/g; s/^,//; s/,$//') ;; esac
        arguments+=("$1" "$list")
        shift 2
    else
        arguments+=("$1")
        shift
    fi
done
set -- ${arguments[@]+"${arguments[@]}"}
# The option loop below consumes "$@"; the run without G (when G is listed) gets these, G included for G.
given=(${arguments[@]+"${arguments[@]}"})

configuration=release
scratch=""
build=1
smoke=0
pass=()
while [ $# -gt 0 ]; do
    case "$1" in
        --configuration) configuration="$2"; shift 2 ;;
        --scratch-path) scratch="$2"; shift 2 ;;
        --no-build) build=0; shift ;;
        --smoke) smoke=1; pass+=("$1"); shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) pass+=("$1"); shift ;;
    esac
done
if [ -z "$scratch" ]; then
    if [ "$configuration" = release ]; then scratch=.build-release; else scratch=.build; fi
fi

if ! command -v sqlite3 >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "loadrun: installing the sqlite3 CLI" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sqlite3 >/dev/null \
            || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sqlite3 >/dev/null; }
    else
        echo "loadrun: the sqlite3 CLI is missing (apt-get install sqlite3)" >&2
        exit 2
    fi
fi

# Every connection is a file descriptor in both processes: raise the soft limit to the hard one.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

if [ "$build" = 1 ]; then
    for product in horgosd horgos-sim horgosctl horgos-bench-floor; do
        echo "loadrun: swift build -c $configuration --scratch-path $scratch --product $product" >&2
        swift build -c "$configuration" --scratch-path "$scratch" --product "$product" >&2
    done
fi
bin="$(swift build -c "$configuration" --scratch-path "$scratch" --show-bin-path)"
for product in horgosd horgos-sim horgos-bench-floor; do
    [ -x "$bin/$product" ] || { echo "loadrun: $bin/$product is missing (build it, or drop --no-build)" >&2; exit 2; }
done

if [ "$with_g" = 1 ]; then
    # The other scenarios first (this script without G), then G on the binaries just used.
    status=0
    "$0" ${given[@]+"${given[@]}"} --no-build --configuration "$configuration" --scratch-path "$scratch" || status=$?
    Benchmarks/loadrun-g.sh ${given[@]+"${given[@]}"} --no-build --configuration "$configuration" \
        --scratch-path "$scratch" || status=$?
    exit "$status"
fi

exec python3 - "$bin" "$configuration" ${pass[@]+"${pass[@]}"} <<'PYTHON'
import glob, json, math, os, re, resource, shutil, signal, socket, subprocess, sys, tempfile, threading, time
import urllib.request

bin_dir, configuration = sys.argv[1], sys.argv[2]
argv = sys.argv[3:]
opts = {"smoke": False, "scenarios": None, "duration": None, "connections": 50_000, "profile": False,
        "json_out": None, "keep": False, "connect_rate": None, "durability": None,
        "vehicles": None, "daemon_env": {}}
i = 0
while i < len(argv):
    a = argv[i]
    if a == "--smoke": opts["smoke"] = True
    elif a == "--profile": opts["profile"] = True
    elif a == "--keep": opts["keep"] = True
    elif a in ("--scenarios", "--duration", "--connections", "--json-out", "--connect-rate", "--durability",
               "--vehicles", "--daemon-env") and i + 1 < len(argv):
        v = argv[i + 1]; i += 1
        if a == "--scenarios": opts["scenarios"] = [s.strip().upper() for s in v.split(",") if s.strip()]
        elif a == "--duration": opts["duration"] = float(v)
        elif a == "--connections": opts["connections"] = int(v)
        elif a == "--connect-rate": opts["connect_rate"] = int(v)
        elif a == "--vehicles": opts["vehicles"] = int(v)
        elif a == "--daemon-env":
            key, _, value = v.partition("=")
            if not key.startswith("HORGOS_") or not _: sys.exit("loadrun: --daemon-env takes HORGOS_KEY=value")
            opts["daemon_env"][key] = value
        elif a == "--durability":
            if v not in ("disk", "process", "replicated"): sys.exit("loadrun: --durability is disk, process or replicated")
            opts["durability"] = v
        else: opts["json_out"] = v
    else:
        sys.exit(f"loadrun: unknown option {a} (see --help)")
    i += 1

smoke = opts["smoke"]
duration = opts["duration"] or (5.0 if smoke else 40.0)
wanted = opts["scenarios"] or (["A", "B", "E"] if smoke else ["A", "B", "C", "D", "E"])
nofile_soft, nofile_hard = resource.getrlimit(resource.RLIMIT_NOFILE)
# horgosd keeps ~6 files per region (41 regions: registry + partition, each with -wal and -shm) plus
# listeners and logs; keep 600 descriptors for those in whichever process holds the most.
c_target = min(opts["connections"], max(100, nofile_soft - 600))

b_vehicles = opts["vehicles"] or 10_000

def scenario_table():
    if smoke:
        return {
            "A": dict(title="gateway 200 veh/4 gw/50 rec", vehicles=200, gateways=4, rpf=50, interval=0, durability="disk"),
            "B": dict(title="vehicle 200 conn/1 rec/s", vehicles=200, gateways=0, rpf=1, interval=1000, durability="disk"),
            "C": dict(title="conn scale 500/1 rec/10 s", vehicles=500, gateways=0, rpf=1, interval=10_000, durability="disk",
                      sources="127.0.0.2-127.0.0.9"),
            "D": dict(title="A, durability=process", vehicles=200, gateways=4, rpf=50, interval=0, durability="process"),
            "E": dict(title="vehicle 100 conn/10 Hz/1 rec", vehicles=100, gateways=0, rpf=1, interval=100, durability="disk"),
            "AS": dict(title="A + stream", vehicles=200, gateways=4, rpf=50, interval=0, durability="disk", stream=True),
            "ES": dict(title="E + stream", vehicles=100, gateways=0, rpf=1, interval=100, durability="disk", stream=True),
            "ER": dict(title="E + stream, replicated", vehicles=100, gateways=0, rpf=1, interval=100,
                       durability="replicated", stream=True),
        }
    return {
        "A": dict(title="gateway 10k veh/20 gw/50 rec", vehicles=10_000, gateways=20, rpf=50, interval=0, durability="disk"),
        "B": dict(title=f"vehicle {b_vehicles // 1000}k conn/1 rec/s" if b_vehicles % 1000 == 0
                  else f"vehicle {b_vehicles} conn/1 rec/s", vehicles=b_vehicles, gateways=0, rpf=1, interval=1000, durability="disk",
                  connect_rate=500),
        "C": dict(title=f"conn scale {c_target}/1 rec/10 s", vehicles=c_target, gateways=0, rpf=1, interval=10_000,
                  durability="disk", sources="127.0.0.2-127.0.0.9", connect_rate=500),
        "D": dict(title="A, durability=process", vehicles=10_000, gateways=20, rpf=50, interval=0, durability="process"),
        "E": dict(title="vehicle 1k conn/10 Hz/1 rec", vehicles=1_000, gateways=0, rpf=1, interval=100, durability="disk",
                  connect_rate=500),
        "AS": dict(title="A + stream (R=3)", vehicles=10_000, gateways=20, rpf=50, interval=0, durability="disk",
                   stream=True),
        "ES": dict(title="E + stream (R=3)", vehicles=1_000, gateways=0, rpf=1, interval=100, durability="disk",
                   connect_rate=500, stream=True),
        "ER": dict(title="E + stream, replicated", vehicles=1_000, gateways=0, rpf=1, interval=100,
                   durability="replicated", connect_rate=500, stream=True),
    }

scenarios = scenario_table()
if opts["durability"]:
    for sc in scenarios.values(): sc["durability"] = opts["durability"]
for s in wanted:
    if s not in scenarios: sys.exit(f"loadrun: no scenario {s} (A, B, C, D, E, AS, ES, ER)")

work = tempfile.mkdtemp(prefix="horgos-loadrun-")
clk_tck = os.sysconf("SC_CLK_TCK")
page_kib = os.sysconf("SC_PAGE_SIZE") // 1024
def log(msg): print(f"loadrun: {msg}", file=sys.stderr, flush=True)

# ---- the floor ---------------------------------------------------------------------------------------
floor_args = ["--json"] + (["--records", "20000", "--repeat", "1"] if smoke else [])
log(f"floor: horgos-bench-floor {' '.join(floor_args)}")
floor_run = subprocess.run([f"{bin_dir}/horgos-bench-floor", *floor_args], capture_output=True, text=True, stdin=subprocess.DEVNULL)
if floor_run.returncode != 0:
    sys.exit(f"loadrun: horgos-bench-floor failed:\n{floor_run.stderr}")
floor = {shape["recordsPerFrame"]: shape for shape in json.loads(floor_run.stdout)["shapes"]}

def floor_for(sc):
    shape = floor.get(sc["rpf"]) or floor[min(floor, key=lambda k: abs(k - sc["rpf"]))]
    return shape["floorProcessNsPerRecord"] if sc["durability"] == "process" else shape["floorDiskNsPerRecord"]

# ---- helpers -------------------------------------------------------------------------------------------
def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

# ---- issue 20: a 3-node NATS JetStream cluster for the stream scenarios -----------------------------------
nats = {"processes": [], "urls": None}
def start_nats():
    server = shutil.which("nats-server") or "/usr/sbin/nats-server"
    if not os.path.exists(server):
        sys.exit("loadrun: the stream scenarios need nats-server (apt-get install nats-server)")
    ports = [(free_port(), free_port()) for _ in range(3)]
    for index, (client, cluster) in enumerate(ports):
        name = f"n{index + 1}"
        routes = ", ".join(f"nats-route://127.0.0.1:{c}" for k, (_, c) in enumerate(ports) if k != index)
        config = f"{work}/nats-{name}.conf"
        with open(config, "w") as f:
            f.write(f"server_name: {name}\nlisten: 127.0.0.1:{client}\nmax_payload: 8MB\n"
                    f"jetstream {{\n  store_dir: \"{work}/nats-{name}\"\n  max_file_store: 16GB\n}}\n"
                    f"cluster {{\n  name: loadrun\n  listen: 127.0.0.1:{cluster}\n  routes: [{routes}]\n}}\n")
        nats["processes"].append(subprocess.Popen([server, "-c", config, "-l", f"{work}/nats-{name}.log"],
                                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                                  stderr=subprocess.DEVNULL))
    nats["urls"] = ",".join(f"nats://127.0.0.1:{c}" for c, _ in ports)
    # JetStream answers once the cluster elected its meta leader: give it a few seconds.
    deadline = time.time() + 60
    while time.time() < deadline:
        time.sleep(1)
        try:
            with socket.create_connection(("127.0.0.1", ports[0][0]), timeout=2) as c:
                c.recv(4096)
                c.sendall(b"CONNECT {\"verbose\":false,\"headers\":true}\r\nSUB _INBOX.lr 1\r\n"
                          b"PUB $JS.API.INFO _INBOX.lr 0\r\n\r\nPING\r\n")
                data = b""
                while b"PONG" not in data:
                    chunk = c.recv(65536)
                    if not chunk: break
                    data += chunk
                time.sleep(0.3)
                c.settimeout(0.5)
                try: data += c.recv(65536)
                except OSError: pass
                if b"MSG _INBOX.lr" in data and b'"error"' not in data: break
        except OSError:
            pass
    log(f"nats: 3-node JetStream cluster at {nats['urls']}")

def stop_nats():
    for p in nats["processes"]:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in nats["processes"]:
        try: p.wait(timeout=20)
        except subprocess.TimeoutExpired: p.kill(); p.wait()

def stream_status(admin_port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/status", timeout=5) as r:
            return json.loads(r.read())
    except Exception:
        return None

def proc_cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / clk_tck  # utime + stime (fields 14 and 15)

def proc_status_kib(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0

def proc_write_bytes(pid):
    """`write_bytes` of /proc/PID/io: bytes this process (all its threads) caused to be sent to storage."""
    try:
        with open(f"/proc/{pid}/io") as f:
            for line in f:
                if line.startswith("write_bytes:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None

def proc_fds(pid):
    try: return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError: return 0

def sqlite_scalar(path, sql):
    out = subprocess.run(["sqlite3", "-readonly", path, sql], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"sqlite3 {path}: {out.stderr.strip()}")
    text = out.stdout.strip()
    return int(text) if text else 0

def wait_health(daemon, admin_port, state, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if daemon.poll() is not None:
            return f"horgosd exited with {daemon.returncode} before it was ready"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/health", timeout=2) as r:
                # ca.crt/ca.key since issue 24; ca.pem/ca-key.pem before it (a "before" build in a comparison).
                if r.status == 200 and any(os.path.exists(f"{state}/pki/{c}") and os.path.exists(f"{state}/pki/{k}")
                                           for c, k in (("ca.crt", "ca.key"), ("ca.pem", "ca-key.pem"))):
                    return None
        except Exception:
            pass
        time.sleep(0.2)
    return "horgosd did not answer GET /health in time"

# ---- one scenario --------------------------------------------------------------------------------------
def run(name, sc):
    state = tempfile.mkdtemp(prefix=f"horgos-loadrun-{name}-")
    logs = f"{work}/{name}"
    os.makedirs(logs)
    tport, aport, gport = free_port(), free_port(), free_port()
    limit = 10_000_000
    env = {k: v for k, v in os.environ.items() if not k.startswith("HORGOS_")}
    env.update(HORGOS_STATE_DIRECTORY=state,
               HORGOS_LISTEN_TELEMETRY=f"127.0.0.1:{tport}",
               HORGOS_LISTEN_ADMIN=f"127.0.0.1:{aport}",
               HORGOS_LISTEN_GBT32960=f"127.0.0.1:{gport}",  # unused here, but it must bind
               HORGOS_STORE_DURABILITY=sc["durability"],
               HORGOS_LIMITS_MAX_CONNECTIONS=str(limit),
               HORGOS_LIMITS_MAX_CONNECTIONS_PER_ADDRESS=str(limit))
    if sc.get("stream"):
        # One stream per scenario (its own name and subjects), bounded so A's run cannot fill the disk.
        env.update(HORGOS_STREAM_SERVERS=nats["urls"], HORGOS_NODE_ID=f"loadrun-{name}",
                   HORGOS_STREAM_NAME=f"LOADRUN_{name}", HORGOS_STREAM_SUBJECT_PREFIX=f"loadrun.{name.lower()}",
                   HORGOS_STREAM_MAX_BYTES=str(4 << 30), HORGOS_STREAM_MAX_AGE_DAYS="1")
    env.update(opts["daemon_env"])
    result = dict(scenario=name, title=sc["title"], durability=sc["durability"], vehicles=sc["vehicles"],
                  gateways=sc["gateways"], recordsPerFrame=sc["rpf"], intervalMs=sc["interval"], state=state, logs=logs,
                  problems=[])
    daemon_log = open(f"{logs}/horgosd.log", "w")
    daemon = subprocess.Popen([f"{bin_dir}/horgosd"], env=env, stdout=daemon_log, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL)
    result["pid"] = daemon.pid
    problem = wait_health(daemon, aport, state)
    if problem:
        result["problems"].append(problem)
        if daemon.poll() is None:
            daemon.kill(); daemon.wait()
        return result
    base_rss = proc_status_kib(daemon.pid, "VmRSS")
    samples = {"rss": base_rss, "fds": proc_fds(daemon.pid)}
    stop_sampling = threading.Event()
    def sampler():
        while not stop_sampling.wait(0.25):
            samples["rss"] = max(samples["rss"], proc_status_kib(daemon.pid, "VmRSS"))
            samples["fds"] = max(samples["fds"], proc_fds(daemon.pid))
    sim_args = [f"{bin_dir}/horgos-sim", "--port", str(tport), "--pki", f"{state}/pki", "--vehicles", str(sc["vehicles"]),
                "--gateways", str(sc["gateways"]), "--interval-ms", str(sc["interval"]),
                "--records-per-frame", str(sc["rpf"]), "--duration", str(duration), "--json"]
    if sc.get("sources"): sim_args += ["--source-addresses", sc["sources"]]
    rate = opts["connect_rate"] or sc.get("connect_rate")
    if rate: sim_args += ["--connect-rate", str(rate)]
    result["simCommand"] = " ".join(sim_args[1:])
    log(f"{name}: horgos-sim {result['simCommand']}")
    perf = None
    phases = {}
    def read_sim_stderr(stream, sink):
        # horgos-sim --json announces its phases on stderr; sample the daemon at each.
        for text in stream:
            sink.write(text); sink.flush()
            m = re.match(r"horgos-sim: phase (\w+) records_acked=(\d+) frames_acked=(\d+)", text)
            if m:
                phases[m.group(1)] = dict(cpu=proc_cpu_seconds(daemon.pid), writeBytes=proc_write_bytes(daemon.pid),
                                          recordsAcked=int(m.group(2)), framesAcked=int(m.group(3)), time=time.time())
    write_bytes_before = proc_write_bytes(daemon.pid)
    cpu_before = proc_cpu_seconds(daemon.pid)
    wall_before = time.time()
    sampling = threading.Thread(target=sampler, daemon=True)
    sampling.start()
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(f"{logs}/horgos-sim.stderr", "w") as sim_err:
        sim = subprocess.Popen(sim_args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        stderr_reader = threading.Thread(target=read_sim_stderr, args=(sim.stderr, sim_err), daemon=True)
        stderr_reader.start()
        if opts["profile"]:
            perf = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "499", "-g", "-p", str(daemon.pid),
                                     "-o", f"{logs}/horgosd.perf.data"],
                                    stdout=subprocess.DEVNULL, stderr=open(f"{logs}/perf.stderr", "w"))
        sim_out = sim.stdout.read()
        sim.wait()
        stderr_reader.join()
    cpu_after = proc_cpu_seconds(daemon.pid)
    if "measuring" in phases and "draining" in phases:
        a, b = phases["measuring"], phases["draining"]
        result["steadyCpuSeconds"] = b["cpu"] - a["cpu"]
        result["steadyRecordsAcked"] = b["recordsAcked"] - a["recordsAcked"]
        result["steadySeconds"] = b["time"] - a["time"]
        if a["writeBytes"] is not None and b["writeBytes"] is not None:
            result["steadyWriteBytes"] = b["writeBytes"] - a["writeBytes"]
    else:
        result["problems"].append("horgos-sim announced no measured phase (see horgos-sim.stderr)")
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result["simCpuSeconds"] = (children_after.ru_utime + children_after.ru_stime
                               - children_before.ru_utime - children_before.ru_stime)
    wall_after = time.time()
    if perf:
        perf.send_signal(signal.SIGINT); perf.wait()
    stop_sampling.set(); sampling.join()
    result["peakRssKiB"] = proc_status_kib(daemon.pid, "VmHWM")
    result["baseRssKiB"] = base_rss
    result["peakSampledRssKiB"] = samples["rss"]
    result["peakFds"] = samples["fds"]
    result["cpuSeconds"] = cpu_after - cpu_before
    result["wallSeconds"] = wall_after - wall_before
    with open(f"{logs}/horgos-sim.json", "w") as f: f.write(sim_out)
    try:
        report = json.loads(sim_out)
    except ValueError:
        report = None
        result["problems"].append(f"horgos-sim exited {sim.returncode} without a JSON report (see {logs}/horgos-sim.stderr)")
    if report is not None:
        result["sim"] = report
        if sim.returncode != 0:
            result["problems"].append(f"horgos-sim exited {sim.returncode}")
    # The store's share of the latency: every region's commit histogram (first submission of a
    # transaction to its commit, window included), summed over the regions.
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{aport}/metrics", timeout=10) as r:
            metrics = r.read().decode()
        with open(f"{logs}/metrics.txt", "w") as f: f.write(metrics)
        def histogram(name):
            """Bucket counts of `name` summed over the regions, and p50/p99 as bucket upper bounds in ms."""
            buckets = {}
            for m in re.finditer(name + r'_bucket\{[^}]*le="([^"]+)"[^}]*\} (\d+)', metrics, re.M):
                le = float("inf") if m.group(1) == "+Inf" else float(m.group(1))
                buckets[le] = buckets.get(le, 0) + int(m.group(2))
            total = buckets.get(float("inf"), 0)
            def pct(p):
                for le in sorted(buckets):
                    if buckets[le] >= p * total: return le * 1000
                return float("nan")
            return total, pct(0.5), pct(0.99)
        total, p50, p99 = histogram("horgos_commit_latency_seconds")
        if total:
            result["commits"], result["commitP50Ms"], result["commitP99Ms"] = total, p50, p99
        total, p50, p99 = histogram("horgos_ack_latency_seconds")
        if total:
            result["serverAckP50Ms"], result["serverAckP99Ms"] = p50, p99
    except Exception as error:  # the figure is diagnostic; the run's verdict does not depend on it
        result["problems"].append(f"GET /metrics failed: {error}")
    if sc.get("stream"):
        # Everything journaled is published before the daemon stops (the backlog counts in the figures).
        deadline = time.time() + 300
        status = None
        while time.time() < deadline:
            status = stream_status(aport)
            regions = (status or {}).get("regions", [])
            if status and status.get("stream") and all((r.get("publishLagEntries") or 0) == 0 for r in regions) \
                    and status["stream"].get("outstanding", 1) == 0:
                break
            time.sleep(0.5)
        result["streamSecondsToPublishAll"] = time.time() - wall_after
        if status and status.get("stream"):
            result["stream"] = status["stream"]
        else:
            result["problems"].append("no stream status on /status")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{aport}/metrics", timeout=10) as r:
                text = r.read().decode()
            buckets = {}
            for m in re.finditer(r'horgos_stream_ack_latency_seconds_bucket\{le="([^"]+)"\} (\d+)', text):
                buckets[float("inf") if m.group(1) == "+Inf" else float(m.group(1))] = int(m.group(2))
            total = buckets.get(float("inf"), 0)
            if total:
                result["streamAckP50Ms"] = next(le for le in sorted(buckets) if buckets[le] >= 0.5 * total) * 1000
                result["streamAckP99Ms"] = next(le for le in sorted(buckets) if buckets[le] >= 0.99 * total) * 1000
        except Exception as error:
            result["problems"].append(f"stream metrics: {error}")
    # Stop the daemon: SIGTERM drains and must exit 0.
    daemon.send_signal(signal.SIGTERM)
    try:
        # Wait for the exit without reaping, so /proc/PID/io still holds the whole run's writes.
        deadline = time.time() + 120
        while time.time() < deadline:
            info = os.waitid(os.P_PID, daemon.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            if info is not None: break
            time.sleep(0.05)
        write_bytes_after = proc_write_bytes(daemon.pid)
        if write_bytes_before is not None and write_bytes_after is not None:
            result["writeBytes"] = write_bytes_after - write_bytes_before
        rc = daemon.wait(timeout=max(1, deadline - time.time()))
        if rc != 0: result["problems"].append(f"horgosd exited {rc} after SIGTERM")
    except subprocess.TimeoutExpired:
        daemon.kill(); daemon.wait()
        result["problems"].append("horgosd did not exit within 120 s of SIGTERM")
    daemon_log.close()
    # Count what landed.
    landed = 0
    for path in sorted(glob.glob(f"{state}/*/telemetry-*.sqlite")):
        landed += sqlite_scalar(path, "SELECT count(*) FROM telemetry;")
    duplicates = rejected = 0
    for path in sorted(glob.glob(f"{state}/*/registry.sqlite")):
        duplicates += sqlite_scalar(path, "SELECT coalesce(sum(duplicates), 0) FROM vehicles;")
        rejected += sqlite_scalar(path, "SELECT coalesce(sum(rejected), 0) FROM vehicles;")
    result.update(landed=landed, duplicates=duplicates, rejectedInRegistry=rejected)
    if perf:
        top = subprocess.run(["perf", "report", "-i", f"{logs}/horgosd.perf.data", "--stdio", "--no-children", "-g", "none",
                              "--sort", "dso,symbol", "--percent-limit", "0.5"],
                             capture_output=True, text=True)
        text = top.stdout
        if shutil.which("swift"):  # Swift symbols, readable
            demangled = subprocess.run(["swift", "demangle", "--simplified"], input=text, capture_output=True, text=True)
            if demangled.returncode == 0: text = demangled.stdout
        with open(f"{logs}/horgosd.perf.txt", "w") as f: f.write(text)
        result["profile"] = f"{logs}/horgosd.perf.txt"
    return result

results = []
if any(scenarios[name].get("stream") for name in wanted):
    start_nats()
try:
    for name in wanted:
        sc = scenarios[name]
        log(f"scenario {name}: {sc['title']}, durability={sc['durability']}, {duration:.0f} s")
        r = run(name, sc)
        results.append(r)
        if not opts["keep"] and not r["problems"] and not opts["profile"]:
            shutil.rmtree(r["state"], ignore_errors=True)
finally:
    stop_nats()

# ---- the table -----------------------------------------------------------------------------------------
def fmt(v, d=0):
    if v is None or (isinstance(v, float) and (math.isnan(v) or math.isinf(v))): return "-"
    return f"{v:,.{d}f}"

rows = []
failed = False
for r in results:
    sim = r.get("sim")
    t = sim["totals"] if sim else {}
    seconds = sim["seconds"] if sim else float("nan")
    acked = t.get("recordsAcked", 0)
    rejected = t.get("recordsRejected", 0)
    frames_acked = t.get("framesAcked", 0)
    landed = r.get("landed", 0)
    records_per_frame = acked / frames_acked if frames_acked else float("nan")
    errors = sum(t.get("errors", {}).values()) + t.get("handshakeFailures", 0) + (sim["outstandingFrames"] if sim else 0)
    error_text = str(errors)
    if t.get("errors"): error_text += " (" + " ".join(f"{k}={v}" for k, v in sorted(t["errors"].items())) + ")"
    if t.get("handshakeFailures"): error_text += f" (handshake failures {t['handshakeFailures']})"
    if sim and sim["outstandingFrames"]: error_text += f" ({sim['outstandingFrames']} frames unacked)"
    if r["problems"]: error_text += " [" + "; ".join(r["problems"]) + "]"
    expected = acked - rejected
    consistent = sim is not None and landed == expected and acked > 0
    ok = consistent and errors == 0 and not r["problems"]
    failed |= not ok
    cpu_per_million = r["cpuSeconds"] / landed * 1e6 if landed and "cpuSeconds" in r else float("nan")
    fl = floor_for(scenarios[r["scenario"]])
    ratio = cpu_per_million * 1e3 / fl if landed else float("nan")  # (s per 1e6 records) * 1e3 = ns per record
    lat = t.get("ackLatencyMicros", {})
    steady = t.get("steadyAckLatencyMicros", {})
    peak_conn = t.get("peakConnected", 0)
    rss_per_conn = (r.get("peakSampledRssKiB", 0) - r.get("baseRssKiB", 0)) / peak_conn if peak_conn else float("nan")
    steady_records = r.get("steadyRecordsAcked", 0)
    steady_cpu_us = r["steadyCpuSeconds"] / steady_records * 1e6 if steady_records else float("nan")
    bytes_per_record = r["writeBytes"] / landed if landed and "writeBytes" in r else float("nan")
    row = dict(scenario=f"{r['scenario']} {r['title']}", connections=peak_conn,
               recordsPerSecond=landed / seconds if seconds else float("nan"),
               framesPerSecond=landed / records_per_frame / seconds if seconds and frames_acked else float("nan"),
               p50=lat.get("p50", 0) / 1000, p99=lat.get("p99", 0) / 1000, p999=lat.get("p999", 0) / 1000,
               steadyP50=steady.get("p50", 0) / 1000, steadyP99=steady.get("p99", 0) / 1000,
               steadyP999=steady.get("p999", 0) / 1000,
               cpuPerMillion=cpu_per_million, steadyCpuMicrosPerRecord=steady_cpu_us, diskBytesPerRecord=bytes_per_record,
               floorNs=fl, ratio=ratio, peakRssMiB=r.get("peakRssKiB", 0) / 1024,
               rssPerConnKiB=rss_per_conn, duplicates=r.get("duplicates", 0), errors=error_text,
               landed=landed, acked=acked, rejected=rejected, consistent=consistent, ok=ok)
    r["row"] = row
    rows.append(row)

headers = ["scenario", "conns", "records/s landed", "frames/s landed", "ack p50 / p99 / p99.9 ms", "steady ack p50 / p99 / p99.9 ms",
           "daemon CPU s per M records", "steady CPU µs/record", "disk bytes/record", "x floor", "peak RSS MiB", "RSS/conn KiB", "dup", "errors",
           "landed = acked"]
table = []
for w in rows:
    table.append([w["scenario"], fmt(w["connections"]), fmt(w["recordsPerSecond"]), fmt(w["framesPerSecond"]),
                  f"{w['p50']:.1f} / {w['p99']:.1f} / {w['p999']:.1f}",
                  f"{w['steadyP50']:.1f} / {w['steadyP99']:.1f} / {w['steadyP999']:.1f}", fmt(w["cpuPerMillion"], 2),
                  fmt(w["steadyCpuMicrosPerRecord"], 2), fmt(w["diskBytesPerRecord"]),
                  fmt(w["ratio"], 2), fmt(w["peakRssMiB"], 1), fmt(w["rssPerConnKiB"], 1), fmt(w["duplicates"]),
                  w["errors"], f"{'yes' if w['consistent'] else 'NO'} ({w['landed']:,} / {w['acked'] - w['rejected']:,})"])
widths = [max(len(h), *(len(row[k]) for row in table)) if table else len(h) for k, h in enumerate(headers)]
def line(cells): return "| " + " | ".join(c.ljust(widths[k]) for k, c in enumerate(cells)) + " |"
print()
print(f"horgos load run ({'smoke, ' if smoke else ''}{configuration} build, {duration:.0f} s of traffic per scenario, "
      f"{os.cpu_count()} cores, RLIMIT_NOFILE {nofile_soft}/{nofile_hard})")
print(line(headers))
print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
for row in table: print(line(row))
print()
shape_text = "; ".join(
    f"{k} rec/frame: TLS {v['tlsOpen16KiBNsPerRecord']:.1f} + parse {v['parseCrcNsPerRecord']:.1f} + append "
    f"{v['storeAppendDiskNsPerRecord']:.1f} = {v['floorDiskNsPerRecord']:.1f} ns/record "
    f"(process: {v['floorProcessNsPerRecord']:.1f})" for k, v in sorted(floor.items(), reverse=True))
print(f"floor (horgos-bench-floor, CPU ns per record): {shape_text}")
print("x floor = daemon CPU per landed record / the floor of its frame shape (and durability).")
print("steady CPU µs/record = daemon CPU while every unit was connected (handshakes and drain excluded) / records "
      "ACKed meanwhile; disk bytes/record = write_bytes of /proc/PID/io from the simulator's start to the daemon's "
      "exit / records landed.")
for r in results:
    if r.get("row") and r["row"]["landed"]:
        print(f"{r['scenario']}: daemon {r['cpuSeconds']:.1f} CPU-s, simulator {r['simCpuSeconds']:.1f} CPU-s "
              f"({r['simCpuSeconds'] / r['row']['landed'] * 1e6:.1f} µs per record) in {r['wallSeconds']:.1f} s of wall time"
              + (f"; store transactions {r['commits']:,}, first submission to commit p50 <= {r['commitP50Ms']:g} ms, "
                 f"p99 <= {r['commitP99Ms']:g} ms" if r.get("commits") else "")
              + (f"; measured phase {r['steadySeconds']:.1f} s: {r['steadyCpuSeconds']:.1f} CPU-s for "
                 f"{r['steadyRecordsAcked']:,} records ACKed"
                 + (f", {r['steadyWriteBytes'] / r['steadyRecordsAcked']:,.0f} bytes written per record ACKed"
                    if r.get("steadyWriteBytes") is not None and r["steadyRecordsAcked"] else "")
                 if r.get("steadyRecordsAcked") else "")
              + (f"; server-side ACK latency (frame decoded to its commit back on the event loop) "
                 f"p50 <= {r['serverAckP50Ms']:g} ms, p99 <= {r['serverAckP99Ms']:g} ms"
                 if r.get("serverAckP99Ms") else ""))
# Issue 20: the stream's figures and the comparisons its acceptance names.
by_name = {r["scenario"]: r for r in results}
for r in results:
    if r.get("stream"):
        st = r["stream"]
        print(f"{r['scenario']} stream: {st.get('published', 0):,} entries published (JetStream acks, "
              f"{st.get('duplicates', 0)} duplicates, {st.get('resends', 0)} resends), all published "
              f"{r.get('streamSecondsToPublishAll', 0):.1f} s after the traffic; JetStream ack p50 <= "
              f"{r.get('streamAckP50Ms', float('nan')):g} ms, p99 <= {r.get('streamAckP99Ms', float('nan')):g} ms "
              f"(entry durable to ack)")
def steady_cpu(name):
    r = by_name.get(name, {})
    return r["steadyCpuSeconds"] / r["steadyRecordsAcked"] * 1e6 if r.get("steadyRecordsAcked") else float("nan")
def steady_p99(name):
    r = by_name.get(name, {})
    return (r.get("sim") or {}).get("totals", {}).get("steadyAckLatencyMicros", {}).get("p99", float("nan")) / 1000
if "E" in by_name and "ES" in by_name:
    print(f"E with the stream vs without: steady daemon CPU {steady_cpu('ES'):.2f} / {steady_cpu('E'):.2f} µs per record "
          f"= {steady_cpu('ES') / steady_cpu('E'):.2f}x (issue 20: at most 1.25x)")
if "ER" in by_name and ("ES" in by_name or "E" in by_name):
    base = "ES" if "ES" in by_name else "E"
    print(f"replicated vs disk: steady ACK p99 {steady_p99('ER'):.1f} / {steady_p99(base):.1f} ms "
          f"= {steady_p99('ER') / steady_p99(base):.2f}x ({base}; issue 20: at most 2x)")
if "AS" in by_name and by_name["AS"].get("row"):
    print(f"A with the stream: {by_name['AS']['row']['recordsPerSecond']:,.0f} records/s landed "
          f"(issue 20: at least 500,000)")
for r in results:
    if r.get("profile"): print(f"profile of {r['scenario']}: {r['profile']}")
if opts["keep"] or opts["profile"] or failed:
    print(f"logs: {work}; state directories: " + ", ".join(r["state"] for r in results))
else:
    shutil.rmtree(work, ignore_errors=True)

if opts["json_out"]:
    with open(opts["json_out"], "w") as f:
        json.dump(dict(smoke=smoke, duration=duration, configuration=configuration,
                       nofile=[nofile_soft, nofile_hard], floor=floor,
                       scenarios=[{k: v for k, v in r.items() if k != "sim"} | {"sim": r.get("sim")} for r in results]),
                  f, indent=2, default=str)

if smoke:
    if failed:
        print("loadrun smoke: FAILED (records landed must equal records acknowledged, with 0 errors)")
        sys.exit(1)
    print("loadrun smoke: ok (records landed = records acknowledged, 0 errors)")
elif failed:
    sys.exit(1)
PYTHON
