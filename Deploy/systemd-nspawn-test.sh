#!/usr/bin/env bash
# The shipped units under a real systemd (252) as PID 1 of a throw-away container, with the real horgosd.
#
#   Deploy/systemd-nspawn-test.sh                              # the real daemon (default; .ci/run runs it)
#   HORGOS_NSPAWN_MODE=stand-in Deploy/systemd-nspawn-test.sh  # the hardening-probe stand-in
#
# Boots `systemd-nspawn -D / --volatile=yes` (the host's /usr read-only, everything else tmpfs), installs
# Horgos in it with Deploy/install.sh (PREFIX=/opt/horgos: /usr is read-only there), with the shipped
# horgosd.service and its full hardening, and drives it with `nsenter -t <container PID 1> -a systemctl`.
# There is no systemd on the host, hence --register=no --keep-unit, and no machinectl.
#
# Modes:
#   daemon    horgosd, horgosctl and horgos-sim are the real build: HORGOS_BIN_DIR, or the debug products
#             of `swift build` (run here; a no-op after `swift test`). A dynamically linked build gets
#             its Swift runtime directory bound read-only into the container. Checks, in order: start
#             returns after READY=1; sandbox in force; a horgos-sim fleet gets ACKs and its records are
#             in the day partitions; 3 watchdog periods survived; `systemctl reload` with a rotated
#             server certificate while a fleet streams (no session lost, new handshakes get the new
#             certificate); the wedged-writer test hook (HORGOS_TEST_HOOKS=1, SIGUSR2) makes the watchdog
#             kill the daemon and systemd restart it, with every acked record still stored; `systemctl
#             stop` under load drains and exits 0 with every acked record stored; horgosd.socket on a
#             privileged port serves a fleet with no capability; no system call fell outside the filter.
#   stand-in  horgosd is Deploy/nspawn/horgosd-stand-in.swift, which probes the hardening from inside
#             (Swift runtime, Foundation, NIO's syscalls work; W+X, setpriority, netlink, low ports do
#             not) and speaks the notify protocol. Proves the harness without a Swift package build.
#
# The PKI: Deploy/pki-bootstrap.sh with the real `horgosctl pki` when horgosctl has it, otherwise with
# Deploy/nspawn/horgosctl-pki-openssl.sh (real certificates from openssl, same file names); horgos-sim
# mints its vehicle certificates from that CA.
# Needs root. Powers the container off and removes what nspawn leaves under /run, even on failure.
# Ports on the host network (shared with the container): HORGOS_NSPAWN_PORT (default: a free one in
# 20000-29999) for the self-bound listener, a free one in 30000-39999 for the admin endpoint,
# HORGOS_NSPAWN_PRIVILEGED_PORT (default: the first free of 844-849) for the socket-activated one.
# HORGOS_NSPAWN_HOLD=SECONDS keeps the container that long before powering it off (debugging).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mode=${HORGOS_NSPAWN_MODE:-daemon}
name=horgos-test-$$
prefix=/opt/horgos
# WatchdogSec= shortened from the shipped 30 s so that "several periods" take seconds. The daemon pings
# at half of it and stops when a writer has not turned for 10 s, so a wedge is noticed within 10-16 s.
watchdog_sec=6
[[ ${HORGOS_NSPAWN_MODE:-daemon} == stand-in ]] && watchdog_sec=3
ready_delay_ms=1500     # stand-in: READY=1 comes this long after start
reload_ms=1000          # stand-in: a reload takes this long
privileged_port=${HORGOS_NSPAWN_PRIVILEGED_PORT:-844}

work=$(mktemp -d /tmp/horgos-nspawn.XXXXXX)
payload=$work/payload
nspawn_pid=""
container_pid=""
failed=0
checks=0
port=""                 # the self-bound telemetry listener (host network, shared with the container)
admin_port=""
sim_pki=/root/sim-pki   # in the container: ca.crt + ca.key, the CA horgos-sim mints vehicles from

say() { echo "nspawn-test: $*"; }
ok() { checks=$((checks + 1)); echo "ok $checks - $*"; }
not_ok() { checks=$((checks + 1)); failed=$((failed + 1)); echo "not ok $checks - $*"; }
die() { echo "nspawn-test: FATAL: $*" >&2; exit 1; }

# inside CMD...: run in the container (all its namespaces), as its root.
inside() { nsenter -t "$container_pid" -a "$@"; }
# unit_prop UNIT PROP: one property's value.
unit_prop() { inside systemctl show "$1" -p "$2" --value; }
journal() { inside journalctl -u "${1:-horgosd.service}" --no-pager -o cat; }
# journal_invocation: the log of horgosd's current (or last) run only.
journal_invocation() {
    inside journalctl --no-pager -o cat _SYSTEMD_INVOCATION_ID="$(unit_prop horgosd.service InvocationID)"
}
# journal_has REGEX: whether horgosd's journal (messages of the daemon and of systemd about it) matches.
# (Not `journal | grep -q`: with pipefail, grep -q exiting early fails the pipeline with SIGPIPE.)
journal_has() {
    local text
    text=$(journal)
    grep -qE "$1" <<<"$text"
}

# --- Cleanup (trap) ------------------------------------------------------------------------------
cleanup() {
    local status=$?
    set +e
    if [[ -n $container_pid ]] && kill -0 "$container_pid" 2>/dev/null; then
        if [[ -n ${HORGOS_NSPAWN_HOLD:-} ]]; then # debugging: keep the container for a while
            say "holding the container for ${HORGOS_NSPAWN_HOLD} s: nsenter -t $container_pid -a ... (work: $work)"
            sleep "$HORGOS_NSPAWN_HOLD"
        fi
        if [[ $failed -gt 0 || $status -ne 0 ]]; then
            say "journal of horgosd in the container (last 60 lines):"
            timeout 10 nsenter -t "$container_pid" -a journalctl -u horgosd -u horgosd.socket --no-pager -n 60
        fi
        timeout 10 nsenter -t "$container_pid" -a systemctl poweroff --no-block >/dev/null 2>&1
    fi
    if [[ -n $nspawn_pid ]]; then
        for _ in $(seq 1 40); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.25; done
        if kill -0 "$nspawn_pid" 2>/dev/null; then
            say "container did not power off; terminating nspawn (pid $nspawn_pid)"
            kill -TERM "$nspawn_pid" 2>/dev/null
            for _ in $(seq 1 20); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.25; done
            kill -0 "$nspawn_pid" 2>/dev/null && kill -KILL "$nspawn_pid" 2>/dev/null
        fi
    fi
    # What nspawn leaves on a host without systemd: its propagation directory for this machine and
    # the (then empty) parents. Others' containers may share the parents: rmdir only if empty.
    rm -rf "/run/systemd/nspawn/propagate/$name"
    rmdir /run/systemd/nspawn/propagate /run/systemd/nspawn /run/systemd/nspawn-root 2>/dev/null
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# An unexpected failure (set -e) names its line instead of ending the run silently.
set -E
trap 'echo "nspawn-test: line $LINENO: \"$BASH_COMMAND\" failed" >&2' ERR

# --- Setup ---------------------------------------------------------------------------------------
ensure_tools() {
    [[ $(id -u) -eq 0 ]] || die "needs root (systemd-nspawn, nsenter)"
    if ! command -v systemd-nspawn >/dev/null; then
        say "installing systemd-container"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd-container >/dev/null \
            || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd-container >/dev/null; }
    fi
    command -v nsenter >/dev/null || die "nsenter missing (util-linux)"
    if [[ $mode == daemon ]]; then
        # The data checks: openssl (PKI, served serial), sqlite3 (rows in the shards), curl (/metrics).
        local tool missing=()
        for tool in openssl sqlite3 curl; do command -v "$tool" >/dev/null || missing+=("$tool"); done
        if [[ ${#missing[@]} -gt 0 ]]; then
            say "installing ${missing[*]}"
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
                || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; }
        fi
    fi
    if [[ -z ${HORGOS_NSPAWN_PRIVILEGED_PORT:-} ]]; then
        # Another run on this host may hold 844: take the first free one of a few privileged ports.
        local candidate
        for candidate in 844 845 846 847 848 849; do
            [[ -z $(ss -Htln "sport = :$candidate") ]] && { privileged_port=$candidate; break; }
        done
    fi
}

free_port() { # free_port FROM TO: a TCP port nobody listens on
    local port
    for _ in $(seq 1 50); do
        port=$((RANDOM % ($2 - $1) + $1))
        [[ -z $(ss -Htln "sport = :$port") ]] && { echo "$port"; return; }
    done
    die "no free port in $1-$2"
}

# The payload the container sees read-only at /payload: bin/ (the stand-in as horgosd, or the real
# build) and repo/ (systemd/ and Deploy/, what install.sh reads).
build_payload() {
    mkdir -p "$payload/bin" "$payload/repo"
    if [[ $mode == stand-in ]]; then
        say "compiling the stand-in (swiftc -O -static-stdlib)"
        swiftc -O -static-stdlib "$repo/Deploy/nspawn/horgosd-stand-in.swift" -o "$payload/bin/horgosd" \
            2>"$work/swiftc.log" || { cat "$work/swiftc.log"; die "the stand-in does not compile"; }
        for tool in horgosctl horgos-sim; do
            printf '#!/bin/sh\necho "%s: stand-in" >&2; exit 1\n' "$tool" >"$payload/bin/$tool"
            chmod 0755 "$payload/bin/$tool"
        done
    else
        local bin_dir=${HORGOS_BIN_DIR:-}
        if [[ -z $bin_dir ]]; then
            # Debug products: after `swift test` (.ci/run) this build is a no-op. A release build would
            # take many minutes on a small CI machine and tests nothing more about the units.
            say "swift build (debug products)"
            (cd "$repo" && swift build >"$work/build.log" 2>&1) || { tail -n 40 "$work/build.log"; die "swift build failed"; }
            bin_dir=$(cd "$repo" && swift build --show-bin-path)
        fi
        local product
        for product in horgosd horgosctl horgos-sim; do
            [[ -x $bin_dir/$product ]] || die "$bin_dir/$product is missing"
            # Hard links when possible: debug binaries are ~100 MB each.
            ln "$bin_dir/$product" "$payload/bin/$product" 2>/dev/null || cp "$bin_dir/$product" "$payload/bin/"
        done
    fi
    cp -a "$repo/systemd" "$repo/Deploy" "$payload/repo/"
    # Stand-in mode: fake PEM files with the contract's names (the stand-in only reads them). Daemon
    # mode: real certificates, from horgosctl when it has `pki`, otherwise from openssl
    # (Deploy/nspawn/horgosctl-pki-openssl.sh, in the payload's copy of Deploy/).
    cat >"$payload/horgosctl-pki-stand-in" <<'FAKE'
#!/bin/sh
case "$1 $2 $3" in
  "pki init --dir") echo "stand-in CA certificate" >"$4/ca.crt"; echo "stand-in CA key" >"$4/ca.key" ;;
  "pki issue server") echo "stand-in server certificate" >"$5/server.crt"; echo "stand-in server key" >"$5/server.key" ;;
  *) echo "horgosctl-pki-stand-in: unexpected $*" >&2; exit 64 ;;
esac
FAKE
    chmod 0755 "$payload/horgosctl-pki-stand-in"
}

horgosctl_for_pki() {
    if [[ $mode == stand-in ]]; then
        echo /payload/horgosctl-pki-stand-in
    elif inside "$prefix/bin/horgosctl" pki --help >/dev/null 2>&1; then
        echo "$prefix/bin/horgosctl"
    else
        echo /payload/repo/Deploy/nspawn/horgosctl-pki-openssl.sh
    fi
}

# A dynamically linked daemon (a debug build) needs its Swift runtime, which lives outside /usr
# (e.g. /opt/swift): bind those library directories read-only at the same path.
library_binds() {
    local binary=$payload/bin/horgosd
    ldd "$binary" 2>/dev/null | awk '$3 ~ /^\// { print $3 }' | while read -r library; do
        case $(readlink -f "$library") in
            /usr/* | /lib/* | /lib64/*) ;;
            *) echo "--bind-ro=$(dirname "$(readlink -f "$library")")" ;;
        esac
    done | sort -u
}

# --rlimit: the container's PID 1 inherits this shell's hard NOFILE limit (often far below 1048576) and
# systemd silently clamps LimitNOFILE= to what it may set; a server's PID 1 has fs.nr_open (1048576).
boot() {
    local binds
    mapfile -t binds < <(library_binds)
    say "booting container $name ${binds[*]}"
    setsid systemd-nspawn --register=no --keep-unit --console=pipe -M "$name" -D / --volatile=yes \
        --bind-ro="$payload:/payload" "${binds[@]}" \
        --rlimit=RLIMIT_NOFILE=1048576:1048576 \
        -b systemd.mask=systemd-firstboot.service >"$work/console.log" 2>&1 </dev/null &
    nspawn_pid=$!
    for _ in $(seq 1 100); do
        container_pid=$( (ps -o pid= --ppid "$nspawn_pid" 2>/dev/null || true) | head -n 1 | tr -d " ")
        [[ -n $container_pid ]] && [[ $(cat "/proc/$container_pid/comm" 2>/dev/null) == systemd ]] && break
        container_pid=""
        kill -0 "$nspawn_pid" 2>/dev/null || { cat "$work/console.log"; die "systemd-nspawn exited"; }
        sleep 0.1
    done
    [[ -n $container_pid ]] || die "no systemd PID 1 under nspawn $nspawn_pid"
    # systemctl fails until PID 1 has its private bus socket up: retry, then wait for boot to settle.
    local state=""
    for _ in $(seq 1 120); do
        state=$(timeout 60 nsenter -t "$container_pid" -a systemctl is-system-running --wait 2>/dev/null || true)
        [[ $state == running || $state == degraded ]] && break
        sleep 0.5
    done
    case $state in
        running) ok "container boots (systemd $(inside systemctl --version | awk 'NR == 1 { print $2 }'), PID 1 = host pid $container_pid)" ;;
        degraded)
            ok "container boots (degraded: $(inside systemctl --failed --plain --no-legend | awk '{ print $1 }' | tr '\n' ' '))" ;;
        *) cat "$work/console.log"; die "container did not reach running (state '$state')" ;;
    esac
}

# Install what install.sh staged, then what a host's first boot would do: users, modes, reload.
# install.sh for real (DESTDIR empty, as root, systemd running): it creates the user, applies the
# tmpfiles snippet and reloads systemd itself. PREFIX=/opt/horgos because /usr is read-only here.
install_in_container() {
    if inside env HORGOS_BIN_DIR=/payload/bin PREFIX=$prefix /payload/repo/Deploy/install.sh >"$work/install.log" 2>&1 \
        && grep -q 'systemctl daemon-reload' "$work/install.log"; then
        ok "install.sh on a live systemd (DESTDIR empty): ran systemd-sysusers, systemd-tmpfiles, daemon-reload"
    else
        cat "$work/install.log"
        die "install.sh failed in the container"
    fi
    local horgosctl
    horgosctl=$(horgosctl_for_pki)
    if inside env HORGOSCTL="$horgosctl" "$prefix/share/horgos/pki-bootstrap.sh" --host localhost \
        >"$work/pki.log" 2>&1; then
        local modes
        modes=$(inside stat -c '%a %U:%G %n' /root/horgos-ca /root/horgos-ca/ca.key /etc/horgos/pki \
            /etc/horgos/pki/server.key | tr '\n' ';')
        if [[ $modes == "700 root:root /root/horgos-ca;600 root:root /root/horgos-ca/ca.key;750 root:horgos /etc/horgos/pki;600 horgos:horgos /etc/horgos/pki/server.key;" ]]; then
            ok "pki-bootstrap.sh (horgosctl: $(basename "$horgosctl")): CA dir 0700, keys 0600, server.key owned by horgos"
        else
            not_ok "pki-bootstrap.sh modes: $modes"
        fi
    else
        cat "$work/pki.log"
        not_ok "pki-bootstrap.sh failed (horgosctl: $horgosctl)"
    fi
    if [[ $mode == daemon ]]; then
        # horgos-sim reads the CA as ca.crt + ca.key (pki init's names, also the development PKI's).
        inside install -d -m 0700 "$sim_pki"
        inside install -m 0644 /root/horgos-ca/ca.crt "$sim_pki/ca.crt"
        inside install -m 0600 /root/horgos-ca/ca.key "$sim_pki/ca.key"
    fi
    port=${HORGOS_NSPAWN_PORT:-$(free_port 20000 29999)}
    admin_port=$(free_port 30000 39999)
    gbt_port=$(free_port 40000 44999)
    # Test settings only: a short watchdog so that several periods pass in seconds, free ports (the
    # host's network is shared: 7443/9477 may be taken by other test runs).
    inside mkdir -p /etc/systemd/system/horgosd.service.d
    {
        echo "[Service]"
        echo "WatchdogSec=${watchdog_sec}s"
        echo "Environment=HORGOS_LISTEN_TELEMETRY=127.0.0.1:$port"
        echo "Environment=HORGOS_LISTEN_ADMIN=127.0.0.1:$admin_port"
        echo "Environment=HORGOS_LISTEN_GBT32960=127.0.0.1:$gbt_port"
        if [[ $mode == stand-in ]]; then
            echo "Environment=STANDIN_LISTEN=127.0.0.1:$port STANDIN_READY_DELAY_MS=$ready_delay_ms"
            echo "Environment=STANDIN_RELOAD_MS=$reload_ms"
            # The stand-in serves no admin endpoint, so no /reload verdict: signal it directly.
            echo "ExecReload="
            echo "ExecReload=/bin/kill -HUP \$MAINPID"
            echo "Environment=STANDIN_READ_FILES=/etc/horgos/pki/ca.crt:/etc/horgos/pki/server.crt:/etc/horgos/pki/server.key:/etc/horgos/pki/revoked.txt"
            echo "Environment=STANDIN_MUST_NOT_READ=/root/horgos-ca/ca.key"
        else
            # The wedged-writer test hook (SIGUSR2); never set in production.
            echo "Environment=HORGOS_TEST_HOOKS=1"
        fi
    } | inside tee /etc/systemd/system/horgosd.service.d/50-test.conf >/dev/null
    if [[ $mode == daemon ]]; then
        # Stricter than shipped, until the socket-activation check (which runs the shipped filter as
        # is): a system call outside SystemCallFilter= kills the daemon (SIGSYS) instead of failing
        # with EPERM, so every check also proves the real stack (Swift runtime, Foundation, NIO,
        # BoringSSL, SQLite) stays inside the filter. Except setpriority: libdispatch calls it when it
        # starts a worker thread (QoS -> nice) and carries on when it fails (systemd/README.md).
        printf '[Service]\nSystemCallErrorNumber=kill\nSystemCallFilter=setpriority\n' \
            | inside tee /etc/systemd/system/horgosd.service.d/60-strict-syscalls.conf >/dev/null
    fi
    inside systemctl daemon-reload
    # Enabled, as on a server: this also keeps the unit loaded while inactive, so that its exit status
    # can be read after `systemctl stop` (an unreferenced inactive unit is unloaded, its status lost).
    inside systemctl enable horgosd.service 2>/dev/null
    if inside getent passwd horgos >/dev/null && [[ $(inside stat -c '%a %G' /etc/horgos/horgosd.yaml) == "640 horgos" ]]; then
        ok "user horgos exists, /etc/horgos/horgosd.yaml is 0640 root:horgos"
    else
        not_ok "user horgos or /etc/horgos/horgosd.yaml mode ($(inside stat -c '%a %U:%G' /etc/horgos/horgosd.yaml))"
    fi
    local verify
    verify=$(inside systemd-analyze verify /etc/systemd/system/horgosd.service 2>&1 || true)
    [[ -z $verify ]] && ok "systemd-analyze verify (in the container, installed unit + test drop-in) is silent" \
        || not_ok "systemd-analyze verify: $verify"
}

# --- Checks --------------------------------------------------------------------------------------
check_harness_trivial_notify() {
    inside tee /etc/systemd/system/harness-notify.service >/dev/null <<'UNIT'
[Unit]
Description=nspawn harness self-test: a trivial Type=notify service
[Service]
Type=notify
NotifyAccess=all
ExecStart=/bin/sh -c 'systemd-notify --ready --status="harness ok"; exec sleep infinity'
UNIT
    inside systemctl daemon-reload
    if timeout 30 nsenter -t "$container_pid" -a systemctl start harness-notify.service \
        && [[ $(unit_prop harness-notify.service ActiveState) == active ]]; then
        ok "harness: trivial Type=notify service (systemd-notify --ready) reaches active"
    else
        not_ok "harness: trivial Type=notify service did not start: $(inside systemctl status harness-notify --no-pager 2>&1 | tail -5)"
    fi
    inside systemctl stop harness-notify.service || true
}

main_pid() { unit_prop horgosd.service MainPID; }

check_start_waits_for_ready() {
    local started ended elapsed_ms
    started=$(date +%s%N)
    if ! timeout 120 nsenter -t "$container_pid" -a systemctl start horgosd.service; then
        not_ok "systemctl start horgosd failed"
        echo "Bail out! horgosd does not start; the remaining checks need it running"
        exit 1
    fi
    ended=$(date +%s%N)
    elapsed_ms=$(((ended - started) / 1000000))
    local state
    state=$(unit_prop horgosd.service ActiveState)/$(unit_prop horgosd.service SubState)
    if [[ $state == active/running ]] && { [[ $mode != stand-in ]] || [[ $elapsed_ms -ge $ready_delay_ms ]]; }; then
        if [[ $mode == stand-in ]]; then
            ok "systemctl start returns after READY=1 (${elapsed_ms} ms; stand-in delays READY by ${ready_delay_ms} ms), $state"
        else
            ok "systemctl start returns (${elapsed_ms} ms), $state"
        fi
    else
        not_ok "start: state $state after ${elapsed_ms} ms (READY delay $ready_delay_ms ms)"
    fi
    if [[ $mode == stand-in ]]; then
        journal_has 'probe: OK' && ok "hardening probe inside the unit: $(journal | grep -o 'probe: OK.*' | tail -n 1)" \
            || not_ok "hardening probe failed: $(journal | grep -E 'FAIL|probe' | tail -n 3)"
    else
        # Type=notify: `systemctl start` returned, so systemd got READY=1. Show it came from the daemon
        # once its listeners were up: the Status= text it sent with READY=1, both listeners answering at
        # once, and how long systemd waited between exec and READY=1.
        local status_text waited health banner_ok=no
        status_text=$(unit_prop horgosd.service StatusText)
        waited=$((($(unit_prop horgosd.service ActiveEnterTimestampMonotonic) - $(unit_prop horgosd.service ExecMainStartTimestampMonotonic)) / 1000))
        health=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$admin_port/health" || true)
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && banner_ok=yes
        if [[ -n $status_text && $health == 200 && $banner_ok == yes ]] && journal_has '^horgosd: ready listeners='; then
            ok "READY=1 from horgosd after its listeners bound: waited ${waited} ms after exec; Status=\"$status_text\"; /health 200 and telemetry port $port accepting as start returned"
        else
            not_ok "READY: Status='$status_text', /health $health, telemetry accepting: $banner_ok; journal: $(journal | tail -n 5 | tr '\n' '|')"
        fi
    fi
}

check_sandbox_in_force() {
    local pid status
    pid=$(main_pid)
    status=$(inside cat "/proc/$pid/status")
    local uid cap nnp seccomp
    uid=$(awk '/^Uid:/ { print $2 }' <<<"$status")
    cap=$(awk '/^CapEff:/ { print $2 }' <<<"$status")
    nnp=$(awk '/^NoNewPrivs:/ { print $2 }' <<<"$status")
    seccomp=$(awk '/^Seccomp:/ { print $2 }' <<<"$status")
    if [[ $uid == "$(inside id -u horgos)" && $cap == 0000000000000000 && $nnp == 1 && $seccomp == 2 ]]; then
        ok "main process runs as horgos, CapEff 0, NoNewPrivs 1, seccomp filter on"
    else
        not_ok "sandbox: uid $uid cap $cap nnp $nnp seccomp $seccomp"
    fi
    # LimitNOFILE=1048576, unless the container's PID 1 itself may not grant that much: systemd then
    # silently clamps (a sandbox without CAP_SYS_RESOURCE, like some CI machines, caps the hard limit).
    local nofile pid1_hard expected=1048576
    nofile=$(inside cat "/proc/$pid/limits" | awk '/Max open files/ { print $4 "/" $5 }')
    pid1_hard=$(awk '/Max open files/ { print $5 }' "/proc/$container_pid/limits")
    [[ $pid1_hard -lt $expected ]] && expected=$pid1_hard
    if [[ $nofile == "$expected/$expected" ]]; then
        local note=""
        [[ $expected -lt 1048576 ]] && note=" (clamped: the container's PID 1 has a hard limit of $pid1_hard)"
        ok "LimitNOFILE: $nofile$note"
    else
        not_ok "LimitNOFILE: $nofile, expected $expected/$expected"
    fi
}

check_watchdog_survives() {
    local pid_before
    pid_before=$(main_pid)
    sleep $((watchdog_sec * 3 + 1))
    if [[ $(main_pid) == "$pid_before" && $(unit_prop horgosd.service NRestarts) == 0 ]]; then
        ok "survives 3 watchdog periods (WatchdogSec=${watchdog_sec}s): same PID, NRestarts 0"
    else
        not_ok "watchdog: PID $pid_before -> $(main_pid), NRestarts $(unit_prop horgosd.service NRestarts)"
    fi
}

check_reload() {
    local pid_before started elapsed_ms
    pid_before=$(main_pid)
    started=$(date +%s%N)
    if ! timeout 60 nsenter -t "$container_pid" -a systemctl reload horgosd.service; then
        not_ok "systemctl reload failed"
        return
    fi
    elapsed_ms=$((($(date +%s%N) - started) / 1000000))
    sleep $(((reload_ms + 999) / 1000 + 1))
    if [[ $(main_pid) == "$pid_before" && $(unit_prop horgosd.service ActiveState) == active ]]; then
        # systemd 252 may let `systemctl reload` return before the daemon's READY=1 (the RELOADING=1
        # datagram races with ExecReload='s kill exiting; Type=notify-reload in 253 removes the race).
        ok "systemctl reload: SIGHUP, same PID, active again (reload returned after ${elapsed_ms} ms; the reload takes ${reload_ms} ms)"
    else
        not_ok "reload: PID $pid_before -> $(main_pid), state $(unit_prop horgosd.service ActiveState)"
    fi
    [[ $mode != stand-in ]] || journal_has '^horgosd-stand-in: reloaded' || not_ok "stand-in did not log its reload"
}

# Stand-in mode (daemon mode: check_wedged_writer_daemon): SIGUSR1 makes the stand-in stop pinging.
check_wedged_writer_watchdog_restart() {
    local pid_before
    pid_before=$(main_pid)
    inside kill -USR1 "$(main_pid)"
    for _ in $(seq 1 $((watchdog_sec * 4 + 20))); do
        [[ $(unit_prop horgosd.service NRestarts) -ge 1 && $(main_pid) != "$pid_before" && $(main_pid) != 0
            && $(unit_prop horgosd.service ActiveState) == active ]] && break
        sleep 0.5
    done
    if [[ $(unit_prop horgosd.service NRestarts) -ge 1 ]] && journal_has 'Watchdog timeout' \
        && [[ $(unit_prop horgosd.service ActiveState) == active ]]; then
        ok "wedged writer: watchdog fired, systemd restarted it (PID $pid_before -> $(main_pid), NRestarts $(unit_prop horgosd.service NRestarts))"
    else
        not_ok "wedged writer: NRestarts $(unit_prop horgosd.service NRestarts), state $(unit_prop horgosd.service ActiveState)"
    fi
}

check_stop_drains_exit_0() {
    local started elapsed_ms
    started=$(date +%s%N)
    timeout 60 nsenter -t "$container_pid" -a systemctl stop horgosd.service || true
    elapsed_ms=$((($(date +%s%N) - started) / 1000000))
    local result code status
    result=$(unit_prop horgosd.service Result)
    code=$(unit_prop horgosd.service ExecMainCode)
    status=$(unit_prop horgosd.service ExecMainStatus)
    # ExecMainCode 1 = CLD_EXITED
    if [[ $result == success && $code == 1 && $status == 0 && $(unit_prop horgosd.service ActiveState) == inactive ]]; then
        ok "systemctl stop: STOPPING=1, drained, exit 0 in ${elapsed_ms} ms (TimeoutStopSec=30s)"
    else
        not_ok "stop: Result=$result ExecMainCode=$code ExecMainStatus=$status after ${elapsed_ms} ms"
    fi
}

check_socket_activated_privileged_port() {
    inside mkdir -p /etc/systemd/system/horgosd.socket.d
    inside cp "$prefix/share/horgos/socket-activation.conf" /etc/systemd/system/horgosd.service.d/
    # The shipped system call filter as is from here on (EPERM, not SIGSYS).
    inside rm -f /etc/systemd/system/horgosd.service.d/60-strict-syscalls.conf
    printf '[Socket]\nListenStream=\nListenStream=%s\n' "$privileged_port" \
        | inside tee /etc/systemd/system/horgosd.socket.d/50-test.conf >/dev/null
    # The real daemon: the GB/T 32960 listener is socket-activated too (horgosd-gbt32960.socket, its own port).
    local gbt_socket_port=""
    if [[ $mode == daemon ]]; then
        gbt_socket_port=$(free_port 45000 49999)
        inside mkdir -p /etc/systemd/system/horgosd-gbt32960.socket.d
        printf '[Socket]\nListenStream=\nListenStream=%s\n' "$gbt_socket_port" \
            | inside tee /etc/systemd/system/horgosd-gbt32960.socket.d/50-test.conf >/dev/null
    fi
    inside systemctl daemon-reload
    if ! inside systemctl start horgosd.socket; then
        not_ok "horgosd.socket did not start (port $privileged_port busy?)"
        return
    fi
    if [[ -n $gbt_socket_port ]] && ! inside systemctl start horgosd-gbt32960.socket; then
        not_ok "horgosd-gbt32960.socket did not start (port $gbt_socket_port busy?)"
        return
    fi
    # The first connection activates the service; the daemon must answer on the passed socket.
    local banner="" served=no
    if [[ $mode == stand-in ]]; then
        banner=$(timeout 60 nsenter -t "$container_pid" -a bash -c \
            "exec 3<>/dev/tcp/127.0.0.1/$privileged_port; head -n 1 <&3" 2>&1 || true)
    else
        check_socket_activated_daemon && served=yes
    fi
    for _ in $(seq 1 40); do
        [[ $(unit_prop horgosd.service ActiveState) == active ]] && break
        sleep 0.25
    done
    local cap
    cap=$( (inside cat "/proc/$(main_pid)/status" || true) | awk '/^CapEff:/ { print $2 }')
    if [[ $mode == stand-in ]]; then
        if [[ $banner == "horgosd-stand-in telemetry" && $cap == 0000000000000000 ]] \
            && journal_has 'listener telemetry: fd 3 from systemd'; then
            ok "socket activation: port $privileged_port served with no capability (fd 3 named 'telemetry')"
        else
            not_ok "socket activation: banner '$banner', CapEff $cap"
        fi
    elif [[ $served == yes ]]; then
        local triggered
        triggered=$(unit_prop horgosd.service TriggeredBy)
        local bound
        bound=$(journal_invocation | grep -o 'telemetry listener bound.*' | head -n 1 || true)
        if [[ $cap == 0000000000000000 && $triggered == *horgosd.socket* && $bound == *:$privileged_port* ]]; then
            ok "socket activation: a fleet on privileged port $privileged_port started horgosd (TriggeredBy=$triggered, '$bound') and was served with CapEff 0: $(sed 's/^socket activation: //' "$work/socket-summary")"
        else
            not_ok "socket-activated daemon: CapEff $cap, TriggeredBy '$triggered', '$bound'"
        fi
        check_socket_activated_gbt32960 "$gbt_socket_port"
    fi
    inside systemctl stop horgosd.socket horgosd-gbt32960.socket horgosd.service || true
    inside rm -f /etc/systemd/system/horgosd.service.d/socket-activation.conf /etc/systemd/system/horgosd.socket.d/50-test.conf \
        /etc/systemd/system/horgosd-gbt32960.socket.d/50-test.conf
    inside systemctl daemon-reload
}

# --- Daemon mode: a real fleet (horgos-sim), the shards, the admin endpoint -------------------------
# [SIM_PORT=P] run_sim OUT ARGS...: horgos-sim in the container (as root: it reads the CA key) against
# the self-bound listener (or port P). With --json, OUT gets the JSON report; otherwise the table, and
# OUT.progress the once-a-second progress line (records acked so far), which the JSON mode lacks.
run_sim() {
    local out=$1
    shift
    inside "$prefix/bin/horgos-sim" --host 127.0.0.1 --port "${SIM_PORT:-$port}" --pki "$sim_pki" --interval-ms 0 \
        --records-per-frame 10 "$@" >"$out" 2>"$out.progress"
}
# sim_json FILE KEY: a number from the JSON report (keys are unique in it).
# (The parsers print nothing, and succeed, when the value is missing: callers compare what they got.)
sim_json() { { grep -oE "\"$2\" : -?[0-9]+" "$1" || true; } | head -n 1 | awk '{ print $3 }'; }
# sim_json_errors FILE: the totals.errors entries ("name=count ..."), empty when there were none.
sim_json_errors() {
    sed -n '/"errors" : {/,/}/p' "$1" | { grep -oE '"[^"]+" : [0-9]+' || true; } | sed -E 's/"([^"]+)" : /\1=/' \
        | tr '\n' ' '
}
# sim_table FILE LABEL: the first number after LABEL in the table report.
sim_table() { { grep -E "^$2 " "$1" || true; } | head -n 1 | sed -E "s/^$2 +//" | { grep -oE '[0-9]+' || true; } | head -n 1; }
# sim_progress_acked FILE: records acked at the last progress line (0 before the first).
sim_progress_acked() {
    local value
    value=$(tr '\r' '\n' <"$1.progress" | { grep -oE 'records acked +[0-9]+' || true; } | tail -n 1 | awk '{ print $3 }')
    echo "${value:-0}"
}
# sim_summary FILE: one line for the log.
sim_summary() {
    echo "recordsAcked $(sim_json "$1" recordsAcked), connects $(sim_json "$1" connects), disconnects" \
        "$(sim_json "$1" disconnects), resentFrames $(sim_json "$1" resentFrames), outstandingFrames" \
        "$(sim_json "$1" outstandingFrames), errors {$(sim_json_errors "$1")}"
}

# stored_rows: telemetry rows in every region's day partitions (<state>/<CC>/telemetry-YYYY-MM-DD.sqlite),
# read with the sqlite3 CLI as user horgos (as root it could leave root-owned -wal/-shm files behind
# that the daemon then cannot open). Works while the daemon runs (WAL readers do not block the writer).
# stored_rows_reaching TARGET [SECONDS]: the shard row count once it reaches TARGET, or after SECONDS
# (default 30) of waiting. An ACK means durable in the journal; the appliers make rows visible within
# store.apply_interval_ms, later when they are behind (a debug build under load) or replaying after a
# restart, so a count taken at once can be short of what was acked without anything being lost.
stored_rows_reaching() {
    local target=$1 limit=$((${2:-30} * 4)) waited=0 rows
    rows=$(stored_rows)
    while [[ $rows -lt $target && $waited -lt $limit ]]; do
        sleep 0.25
        waited=$((waited + 1))
        rows=$(stored_rows)
    done
    echo "$rows"
}

stored_rows() {
    inside setpriv --reuid=horgos --regid=horgos --init-groups sh -c '
        total=0
        for f in /var/lib/horgos/*/telemetry-*.sqlite; do
            [ -e "$f" ] || continue
            n=$(sqlite3 "$f" "PRAGMA busy_timeout = 5000; SELECT count(*) FROM telemetry;" | tail -n 1) || exit 1
            total=$((total + n))
        done
        echo "$total"'
}

# metric_sum NAME: the sum of a Prometheus counter over its labels, from the admin endpoint.
metric_sum() {
    { curl -sf --max-time 5 "http://127.0.0.1:$admin_port/metrics" || true; } \
        | awk -v name="$1" '$1 == name || index($1, name "{") == 1 { sum += $2 } END { printf "%d\n", sum }'
}

# served_serial PORT: the serial of the certificate the telemetry listener presents to a new handshake
# (TLS 1.3 sends it before asking for the client certificate this probe does not have).
served_serial() {
    { timeout 10 openssl s_client -connect "127.0.0.1:$1" -servername localhost </dev/null 2>/dev/null || true; } \
        | { openssl x509 -noout -serial 2>/dev/null || true; } | sed 's/^serial=//'
}

# wait_until SECONDS COMMAND...: polls COMMAND every 0.25 s; false on timeout.
wait_until() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        [[ $SECONDS -lt $deadline ]] || return 1
        sleep 0.25
    done
}
service_active() { [[ $(unit_prop horgosd.service ActiveState) == active ]]; }
journal_matches() { journal_has "$1"; }
progress_shows_acks() { [[ $(sim_progress_acked "$1") -gt 0 ]]; }

check_client_gets_acks() {
    local out=$work/sim-acks.json before after
    before=$(stored_rows)
    if ! run_sim "$out" --vehicles 4 --duration 3 --seed 101 --json --quiet; then
        not_ok "horgos-sim exited non-zero: $(sim_summary "$out")"
        head -c 3000 "$out.progress"
        return
    fi
    local acked errors rejected
    acked=$(sim_json "$out" recordsAcked)
    rejected=$(sim_json "$out" recordsRejected)
    errors=$(sim_json_errors "$out")
    after=$(stored_rows_reaching $((before + acked - rejected)) 10)
    if [[ $acked -gt 0 && -z $errors && $(sim_json "$out" outstandingFrames) == 0 ]]; then
        ok "horgos-sim, 4 vehicles over mutual TLS for 3 s: $(sim_summary "$out")"
    else
        not_ok "horgos-sim: $(sim_summary "$out")"
    fi
    local partitions
    partitions=$(inside sh -c 'ls /var/lib/horgos/*/telemetry-*.sqlite 2>/dev/null || true' | sed 's|/var/lib/horgos/||' | tr '\n' ' ')
    if [[ $((after - before)) -ge $((acked - rejected)) && -n $partitions ]]; then
        ok "every acked record is in the shards: $((after - before)) rows stored >= $acked acked - $rejected rejected ($partitions)"
    else
        not_ok "shards hold $((after - before)) new rows, the client saw $acked acked, $rejected rejected (partitions: $partitions)"
    fi
    local metrics
    metrics="horgos_acks_total $(metric_sum horgos_acks_total), horgos_records_stored_total $(metric_sum horgos_records_stored_total), horgos_sessions_total $(metric_sum horgos_sessions_total)"
    if [[ $(metric_sum horgos_records_stored_total) -ge $((acked - rejected)) ]]; then
        ok "admin endpoint /metrics: $metrics"
    else
        not_ok "admin endpoint /metrics: $metrics"
    fi
}

check_watchdog_survives_daemon() {
    local pid_before ping_before ping_after usec
    pid_before=$(main_pid)
    usec=$(unit_prop horgosd.service WatchdogUSec)
    ping_before=$(unit_prop horgosd.service WatchdogTimestampMonotonic)
    sleep $((watchdog_sec * 3 + 1))
    ping_after=$(unit_prop horgosd.service WatchdogTimestampMonotonic)
    if [[ $(main_pid) == "$pid_before" && $(unit_prop horgosd.service NRestarts) == 0 && $ping_after -gt $ping_before ]] \
        && service_active; then
        ok "survives 3 watchdog periods (WatchdogUSec=$usec): same PID, NRestarts 0, WATCHDOG=1 pings keep coming"
    else
        not_ok "watchdog: PID $pid_before -> $(main_pid), NRestarts $(unit_prop horgosd.service NRestarts), last ping $ping_before -> $ping_after"
    fi
}

# A fleet streams across `systemctl reload` after the server certificate was replaced on disk (issued
# anew from the same CA, installed as RUNBOOK.md "Rotate the server certificate" says).
check_reload_keeps_session() {
    local out=$work/sim-reload.json pid_before old_serial new_serial served sim
    pid_before=$(main_pid)
    old_serial=$(served_serial "$port")
    # 12 vehicles: as fast as ACKs allow, each record is one simulated second of its vehicle; more vehicles
    # keep each vehicle's clock within store.future_horizon_hours (24 h) for the whole run.
    run_sim "$out" --vehicles 12 --duration 8 --seed 102 --json --quiet &
    sim=$!
    sleep 2
    local horgosctl
    horgosctl=$(horgosctl_for_pki)
    inside sh -ec "
        cd /root/horgos-ca
        '$horgosctl' pki issue server --dir /root/horgos-ca --name localhost >/dev/null
        install -o root -g horgos -m 0644 /root/horgos-ca/server.crt /etc/horgos/pki/server.crt.new
        install -o horgos -g horgos -m 0600 /root/horgos-ca/server.key /etc/horgos/pki/server.key.new
        mv /etc/horgos/pki/server.key.new /etc/horgos/pki/server.key
        mv /etc/horgos/pki/server.crt.new /etc/horgos/pki/server.crt
        rm /root/horgos-ca/server.key"
    new_serial=$(inside openssl x509 -in /etc/horgos/pki/server.crt -noout -serial | sed 's/^serial=//')
    local started elapsed_ms
    started=$(date +%s%N)
    if ! timeout 60 nsenter -t "$container_pid" -a systemctl reload horgosd.service; then
        not_ok "systemctl reload failed"
    fi
    elapsed_ms=$((($(date +%s%N) - started) / 1000000))
    wait_until 15 journal_matches 'reloaded certificates, revocations and limits' || true
    wait_until 10 service_active || true
    served=$(served_serial "$port")
    if journal_has 'reloaded certificates, revocations and limits' \
        && [[ $(main_pid) == "$pid_before" && -n $new_serial && $served == "$new_serial" && $old_serial != "$new_serial" ]] \
        && service_active; then
        ok "systemctl reload (returned in ${elapsed_ms} ms): same PID, journal 'reloaded certificates, revocations and limits', new handshakes get the rotated certificate (serial ${old_serial:0:8}… -> ${new_serial:0:8}…)"
    else
        not_ok "reload: PID $pid_before -> $(main_pid), served serial '$served', new '$new_serial', old '$old_serial'; journal: $(journal | grep -iE 'reload' | tail -n 3 | tr '\n' '|')"
    fi
    local status=0
    wait "$sim" || status=$?
    local vehicles=12
    if [[ $status == 0 && -z $(sim_json_errors "$out") && $(sim_json "$out" outstandingFrames) == 0 \
        && $(sim_json "$out" recordsAcked) -gt 0 && $(sim_json "$out" connects) == "$vehicles" \
        && $(sim_json "$out" resentFrames) == 0 && $(sim_json "$out" handshakeFailures) == 0 \
        && $(sim_json "$out" disconnects) -le $vehicles ]]; then
        ok "sessions kept across the reload: one connection per vehicle, no reconnect, nothing resent ($(sim_summary "$out"); the $vehicles disconnects are the closes after BYE)"
    else
        not_ok "fleet across the reload (exit $status): $(sim_summary "$out")"
    fi
}

# A reload the daemon refuses (an empty deny list) makes `systemctl reload` fail; the daemon keeps running
# with its previous state, and the next good reload succeeds.
check_failed_reload_fails_systemctl() {
    local pid_before
    pid_before=$(main_pid)
    inside cp /etc/horgos/pki/revoked.txt /root/revoked.txt.good
    inside sh -c ': > /etc/horgos/pki/revoked.txt'
    if timeout 60 nsenter -t "$container_pid" -a systemctl reload horgosd.service; then
        not_ok "systemctl reload succeeded with an empty deny list"
    elif service_active && [[ $(main_pid) == "$pid_before" ]] && journal_has 'reload failed'; then
        ok "systemctl reload fails on an empty deny list; the daemon keeps running (same PID, journal 'reload failed')"
    else
        not_ok "failed reload: PID $pid_before -> $(main_pid), active $(unit_prop horgosd.service ActiveState)"
    fi
    inside cp /root/revoked.txt.good /etc/horgos/pki/revoked.txt
    if timeout 60 nsenter -t "$container_pid" -a systemctl reload horgosd.service && service_active; then
        ok "systemctl reload succeeds again once the deny list is restored"
    else
        not_ok "reload after restoring the deny list failed"
    fi
}

# The wedged-writer hook: every region writer stops turning, the daemon withholds WATCHDOG=1, systemd
# kills it (SIGABRT) and restarts it. A fleet streams throughout; every record it saw acked before the
# kill, and every record the killed process committed, must be in the shards after the restart.
check_wedged_writer_daemon() {
    local out=$work/sim-wedge.txt pid_before restarts_before rows_start sim
    pid_before=$(main_pid)
    restarts_before=$(unit_prop horgosd.service NRestarts)
    rows_start=$(stored_rows)
    # Long enough to span wedge (t=~3 s), watchdog kill (<= 16 s later), restart and reconnect.
    run_sim "$out" --vehicles 16 --duration 30 --drain-timeout 30 --backoff-ms 250 --seed 103 &
    sim=$!
    if ! wait_until 20 progress_shows_acks "$out"; then
        not_ok "wedge: the fleet got no ACKs before the wedge ($(tail -c 300 "$out.progress"))"
    fi
    local wedged_at=$SECONDS
    inside systemctl kill -s SIGUSR2 horgosd.service
    sleep 2
    # Writers wedged: nothing more commits, so nothing more is acked. What this process committed:
    local committed acked_before_kill
    committed=$(metric_sum horgos_records_stored_total)
    acked_before_kill=$(sim_progress_acked "$out")
    while [[ $(main_pid) == "$pid_before" ]] && [[ $((SECONDS - wedged_at)) -lt 40 ]]; do
        acked_before_kill=$(sim_progress_acked "$out")
        sleep 0.25
    done
    local killed_after=$((SECONDS - wedged_at))
    wait_until 30 eval '[[ $(unit_prop horgosd.service NRestarts) -gt $restarts_before && $(main_pid) != 0 ]] && service_active' || true
    local rows_after_restart target_after_restart=$((rows_start + acked_before_kill))
    [[ $committed -gt $target_after_restart ]] && target_after_restart=$committed
    rows_after_restart=$(stored_rows_reaching "$target_after_restart")
    local restarts
    restarts=$(unit_prop horgosd.service NRestarts)
    if [[ $restarts -gt $restarts_before ]] && service_active && journal_has 'test hook: region writers wedged' \
        && journal_has 'Watchdog timeout' && journal_has 'Killing process [0-9]+ \(horgosd\) with signal SIGABRT'; then
        ok "wedged writer (SIGUSR2 test hook): watchdog timeout after ${killed_after} s, SIGABRT, systemd restarted it (PID $pid_before -> $(main_pid), NRestarts $restarts_before -> $restarts)"
    else
        not_ok "wedged writer: NRestarts $restarts_before -> $restarts, state $(unit_prop horgosd.service ActiveState); journal: $(journal | grep -iE 'watchdog|SIGABRT|wedged|exited' | tail -n 4 | tr '\n' '|')"
    fi
    if [[ $((rows_after_restart - rows_start)) -ge $acked_before_kill && $rows_after_restart -ge $committed && $acked_before_kill -gt 0 ]]; then
        ok "nothing acked lost: the client saw $acked_before_kill records acked before the kill, the killed process committed $committed (horgos_records_stored_total); after the restart the shards hold $((rows_after_restart - rows_start)) of this fleet's rows, $rows_after_restart in all"
    else
        not_ok "acked lost? client acked before kill $acked_before_kill, committed $committed, rows after restart $rows_after_restart (this fleet: $((rows_after_restart - rows_start)))"
    fi
    local status=0
    wait "$sim" || status=$?
    local acked_total rejected_total rows_end
    acked_total=$(sim_table "$out" 'records acked')
    # Acked but rejected: past the future horizon (store.future_horizon_hours), which a fleet sending
    # as fast as ACKs allow (1 simulated second per record) reaches; ACKs say how many.
    rejected_total=$(sim_table "$out" 'records rejected \(horizon\)')
    rows_end=$(stored_rows_reaching $((rows_start + acked_total - rejected_total)))
    if [[ $(sim_table "$out" 'outstanding frames at end') == 0 && $((rows_end - rows_start)) -ge $((acked_total - rejected_total)) ]]; then
        ok "the fleet reconnected and resent: every frame acked in the end ($acked_total records, $rejected_total of them rejected past the horizon, $(sim_table "$out" 'frames resent after reconnect') frames resent), $((rows_end - rows_start)) rows stored"
    else
        not_ok "after the restart (sim exit $status): $(grep -E 'records acked|outstanding|errors|connects|resent' "$out" | tr -s ' ' | tr '\n' '|') rows $((rows_end - rows_start))"
    fi
}

# `systemctl stop` while a fleet streams: the daemon drains (acks what is committed, BYE), the store
# commits and closes, exit 0. Every record the client saw acked is stored.
check_stop_under_load() {
    local out=$work/sim-stop.json rows_start sim
    rows_start=$(stored_rows)
    run_sim "$out" --vehicles 4 --duration 5 --drain-timeout 2 --backoff-ms 10000 --seed 104 --json --quiet &
    sim=$!
    sleep 2.5
    check_stop_drains_exit_0
    wait "$sim" || true
    local acked rejected rows_end
    acked=$(sim_json "$out" recordsAcked)
    rejected=$(sim_json "$out" recordsRejected)
    rows_end=$(stored_rows)
    if [[ $acked -gt 0 && $((rows_end - rows_start)) -ge $((acked - rejected)) ]] && journal_has 'graceful shutdown started' \
        && journal_has 'region writers stopped' && journal_has 'horgosd stopped'; then
        ok "stop under load: every acked record stored ($((rows_end - rows_start)) rows >= $acked acked - $rejected rejected), journal: graceful shutdown started … region writers stopped … horgosd stopped"
    else
        not_ok "stop under load: acked $acked, rows $((rows_end - rows_start)); $(sim_summary "$out")"
    fi
}

# Socket activation: systemd binds the privileged port; the first vehicle's connection starts horgosd,
# which serves it on the passed descriptor with no capability at all.
check_socket_activated_daemon() {
    local out=$work/sim-socket.json
    if SIM_PORT=$privileged_port run_sim "$out" --vehicles 2 --duration 2 --seed 105 --json --quiet \
        && [[ $(sim_json "$out" recordsAcked) -gt 0 && -z $(sim_json_errors "$out") ]]; then
        :
    else
        not_ok "socket activation: fleet on port $privileged_port: $(sim_summary "$out") $(tail -c 300 "$out.progress")"
        return 1
    fi
    echo "socket activation: $(sim_summary "$out")" >"$work/socket-summary"
}

# Socket activation of the second listener: the daemon adopted the socket systemd passed under the name
# "gbt32960" (not the address in its configuration) and a GB/T 32960 fleet is answered on it.
check_socket_activated_gbt32960() {
    local gbt_socket_port=$1 out=$work/sim-socket-gbt.json bound
    bound=$(journal_invocation | grep -o 'GB/T 32960 listener bound.*' | head -n 1 || true)
    if SIM_PORT=$privileged_port run_sim "$out" --protocol gbt32960 --gbt32960-port "$gbt_socket_port" \
        --vehicles 2 --duration 2 --seed 106 --json --quiet \
        && [[ $(sim_json "$out" framesAnswered) -gt 0 && -z $(sim_json_errors "$out") \
              && $bound == *:$gbt_socket_port*inherited* ]]; then
        ok "socket activation: the GB/T 32960 listener adopted horgosd-gbt32960.socket's fd ('$bound') and answered a GB/T 32960 fleet on port $gbt_socket_port: framesAnswered $(sim_json "$out" framesAnswered)"
    else
        not_ok "socket activation of the GB/T 32960 listener: '$bound'; fleet: $(tail -c 400 "$out") $(tail -c 300 "$out.progress")"
    fi
}

# The hardening directives the issue singles out, as systemd applied them to the running daemon, and
# the whole run's journal: no SIGSYS (SystemCallErrorNumber=kill in the test drop-in), no EPERM.
check_hardening_real_stack() {
    local props
    props=$(inside systemctl show horgosd.service -p MemoryDenyWriteExecute -p ProcSubset -p ProtectProc \
        -p SystemCallErrorNumber -p RestrictAddressFamilies -p NoNewPrivileges -p PrivateUsers | sort | tr '\n' ' ')
    local text
    text=$(inside journalctl -u horgosd.service --no-pager -o cat)
    local bad
    bad=$(grep -E 'status=31/SYS|SIGSYS|Operation not permitted|Permission denied|EPERM|EACCES' <<<"$text" | head -n 3 || true)
    local dispatch
    dispatch=$(grep -o 'Failed to set thread priority.*' <<<"$text" | sed -E 's/pqc=0x[0-9a-f]+ //' | sort | uniq -c \
        | awk '{ $1 = $1 "x"; print }' | tr '\n' ';' || true)
    if [[ -z $bad && $props == *MemoryDenyWriteExecute=yes* && $props == *ProcSubset=pid* && $props == *ProtectProc=invisible* ]]; then
        ok "hardening held with the real stack (NIO, BoringSSL, SQLite): $props; no SIGSYS/EPERM in the whole run's journal (libdispatch, harmless: ${dispatch:-none})"
    else
        not_ok "hardening: $props; journal: $bad"
    fi
}

# --- Main ----------------------------------------------------------------------------------------
case $mode in
    stand-in | daemon) ;;
    *) die "HORGOS_NSPAWN_MODE=$mode: stand-in or daemon" ;;
esac
ensure_tools
build_payload
boot
install_in_container
check_harness_trivial_notify
check_start_waits_for_ready
check_sandbox_in_force
if [[ $mode == daemon ]]; then
    check_client_gets_acks
    check_watchdog_survives_daemon
    check_reload_keeps_session
    check_failed_reload_fails_systemctl
    check_wedged_writer_daemon
    check_stop_under_load
    check_socket_activated_privileged_port
    check_hardening_real_stack
else
    check_watchdog_survives
    check_reload
    check_wedged_writer_watchdog_restart
    check_stop_drains_exit_0
    check_socket_activated_privileged_port
fi

echo "1..$checks"
if [[ $failed -gt 0 ]]; then
    say "$failed of $checks checks failed ($mode mode)"
    exit 1
fi
say "all $checks checks passed ($mode mode)"
