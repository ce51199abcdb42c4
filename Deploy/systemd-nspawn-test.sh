#!/usr/bin/env bash
# The shipped units under a real systemd (252) as PID 1 of a throw-away container.
#
#   Deploy/systemd-nspawn-test.sh                        # stand-in mode (default): works today
#   HORGOS_NSPAWN_MODE=daemon Deploy/systemd-nspawn-test.sh   # the real horgosd (once it exists)
#
# Boots `systemd-nspawn -D / --volatile=yes` (the host's /usr read-only, everything else tmpfs), installs
# Horgos in it with Deploy/install.sh (PREFIX=/opt/horgos: /usr is read-only there), with the shipped
# horgosd.service and its full hardening, and drives it with `nsenter -t <container PID 1> -a systemctl`.
# There is no systemd on the host, hence --register=no --keep-unit, and no machinectl.
#
# Modes:
#   stand-in  horgosd is Deploy/nspawn/horgosd-stand-in.swift, which probes the hardening from inside
#             (Swift runtime, Foundation, NIO's syscalls work; W+X, setpriority, netlink, low ports do
#             not) and speaks the notify protocol (READY, WATCHDOG, RELOADING, STOPPING, LISTEN_FDS).
#             Proves the harness and the unit's lifecycle directives now.
#   daemon    horgosd is the real build (release, or HORGOS_BIN_DIR). The lifecycle checks are the same;
#             the data checks (ACKs, nothing acked lost) are TODO functions below, to fill in when the
#             daemon, horgos-sim and the wedge test hook exist.
#
# Not in .ci/run yet (issue 6 wants it there once the daemon checks are filled in).
# Needs root. Powers the container off and removes what nspawn leaves under /run, even on failure.
# Ports on the host network (shared with the container): HORGOS_NSPAWN_PORT (default: a free one in
# 20000-29999) for the self-bound listener, HORGOS_NSPAWN_PRIVILEGED_PORT (default 844) for the
# socket-activated one.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mode=${HORGOS_NSPAWN_MODE:-stand-in}
name=horgos-test-$$
prefix=/opt/horgos
watchdog_sec=3          # shortened from the shipped 30 s so that "several periods" take seconds
ready_delay_ms=1500     # stand-in: READY=1 comes this long after start
reload_ms=1000          # stand-in: a reload takes this long
privileged_port=${HORGOS_NSPAWN_PRIVILEGED_PORT:-844}

work=$(mktemp -d /tmp/horgos-nspawn.XXXXXX)
payload=$work/payload
nspawn_pid=""
container_pid=""
failed=0
checks=0

say() { echo "nspawn-test: $*"; }
ok() { checks=$((checks + 1)); echo "ok $checks - $*"; }
not_ok() { checks=$((checks + 1)); failed=$((failed + 1)); echo "not ok $checks - $*"; }
die() { echo "nspawn-test: FATAL: $*" >&2; exit 1; }
todo() { checks=$((checks + 1)); echo "ok $checks - # SKIP TODO(daemon): $*"; }

# inside CMD...: run in the container (all its namespaces), as its root.
inside() { nsenter -t "$container_pid" -a "$@"; }
# unit_prop UNIT PROP: one property's value.
unit_prop() { inside systemctl show "$1" -p "$2" --value; }
journal() { inside journalctl -u "${1:-horgosd.service}" --no-pager -o cat; }
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

# --- Setup ---------------------------------------------------------------------------------------
ensure_tools() {
    [[ $(id -u) -eq 0 ]] || die "needs root (systemd-nspawn, nsenter)"
    if ! command -v systemd-nspawn >/dev/null; then
        say "installing systemd-container"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd-container >/dev/null \
            || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd-container >/dev/null; }
    fi
    command -v nsenter >/dev/null || die "nsenter missing (util-linux)"
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
            say "building the release binaries"
            for product in horgosd horgosctl horgos-sim; do
                (cd "$repo" && swift build -c release --static-swift-stdlib --product "$product")
            done
            bin_dir=$(cd "$repo" && swift build -c release --static-swift-stdlib --show-bin-path)
        fi
        cp "$bin_dir/horgosd" "$bin_dir/horgosctl" "$bin_dir/horgos-sim" "$payload/bin/"
    fi
    cp -a "$repo/systemd" "$repo/Deploy" "$payload/repo/"
    # Until horgosctl has `pki`: a stand-in that writes the files of the contract pki-bootstrap.sh
    # documents, so that the bootstrap, the modes and the daemon's access to them are checked.
    # TODO(horgosctl pki): in daemon mode use the real horgosctl (it is used when it has `pki`).
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
    if [[ $mode == daemon ]] && inside "$prefix/bin/horgosctl" pki --help >/dev/null 2>&1; then
        echo "$prefix/bin/horgosctl"
    else
        echo /payload/horgosctl-pki-stand-in
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
    local port
    port=${HORGOS_NSPAWN_PORT:-$(free_port 20000 29999)}
    # Test settings only: a short watchdog so that several periods pass in seconds, free ports.
    inside mkdir -p /etc/systemd/system/horgosd.service.d
    {
        echo "[Service]"
        echo "WatchdogSec=${watchdog_sec}s"
        echo "Environment=STANDIN_LISTEN=127.0.0.1:$port STANDIN_READY_DELAY_MS=$ready_delay_ms"
        echo "Environment=STANDIN_RELOAD_MS=$reload_ms"
        echo "Environment=STANDIN_READ_FILES=/etc/horgos/pki/ca.crt:/etc/horgos/pki/server.crt:/etc/horgos/pki/server.key:/etc/horgos/pki/revoked.txt"
        echo "Environment=STANDIN_MUST_NOT_READ=/root/horgos-ca/ca.key"
        echo "Environment=HORGOS_LISTEN_TELEMETRY=127.0.0.1:$port"
        echo "Environment=HORGOS_LISTEN_ADMIN=127.0.0.1:$(free_port 30000 39999)"
        # TODO(daemon): a test PKI (tls.* overrides pointing at /payload/pki) and the wedge test hook.
    } | inside tee /etc/systemd/system/horgosd.service.d/50-test.conf >/dev/null
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
        ok "systemctl start returns after READY=1 (${elapsed_ms} ms; stand-in delays READY by ${ready_delay_ms} ms), $state"
    else
        not_ok "start: state $state after ${elapsed_ms} ms (READY delay $ready_delay_ms ms)"
    fi
    if [[ $mode == stand-in ]]; then
        journal_has 'probe: OK' && ok "hardening probe inside the unit: $(journal | grep -o 'probe: OK.*' | tail -n 1)" \
            || not_ok "hardening probe failed: $(journal | grep -E 'FAIL|probe' | tail -n 3)"
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

wedge_writer() {
    if [[ $mode == stand-in ]]; then
        inside kill -USR1 "$(main_pid)"
    else
        # TODO(daemon): trigger the wedged-writer test hook (e.g. a HORGOS_TEST_* setting or an admin
        # endpoint) so one region writer stops making progress and the daemon stops WATCHDOG=1.
        return 1
    fi
}

check_wedged_writer_watchdog_restart() {
    local pid_before
    pid_before=$(main_pid)
    if ! wedge_writer; then
        todo "wedged-writer hook: watchdog fires, systemd restarts, nothing acked lost"
        return
    fi
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
    check_nothing_acked_lost
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
    printf '[Socket]\nListenStream=\nListenStream=%s\n' "$privileged_port" \
        | inside tee /etc/systemd/system/horgosd.socket.d/50-test.conf >/dev/null
    inside systemctl daemon-reload
    if ! inside systemctl start horgosd.socket; then
        not_ok "horgosd.socket did not start (port $privileged_port busy?)"
        return
    fi
    # The first connection activates the service; the daemon must answer on the passed socket.
    local banner
    banner=$(timeout 60 nsenter -t "$container_pid" -a bash -c \
        "exec 3<>/dev/tcp/127.0.0.1/$privileged_port; head -n 1 <&3" 2>&1 || true)
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
    else
        # TODO(daemon): connect a vehicle client (TLS) to port $privileged_port and expect WELCOME.
        [[ $cap == 0000000000000000 ]] && todo "vehicle session over the socket-activated port $privileged_port" \
            || not_ok "socket-activated daemon: CapEff $cap"
    fi
    inside systemctl stop horgosd.socket horgosd.service || true
    inside rm -f /etc/systemd/system/horgosd.service.d/socket-activation.conf /etc/systemd/system/horgosd.socket.d/50-test.conf
    inside systemctl daemon-reload
}

# --- Daemon-only checks (TODO until horgosd, horgos-sim and the test hook exist) ------------------
check_client_gets_acks() {
    # TODO(daemon): issue a vehicle certificate from a test PKI made in $payload (horgosctl pki init /
    # issue server / issue vehicle), point tls.* at it in 50-test.conf, run `horgos-sim` (or the Swift
    # test client) against 127.0.0.1:$port, expect ACKs and the records in /var/lib/horgos/<CC>/.
    todo "a vehicle client connects and gets ACKs"
}

check_reload_keeps_session() {
    # TODO(daemon): keep a client session streaming across `systemctl reload` (new server certificate
    # in place first); expect the same session to keep getting ACKs, new handshakes to see the new cert.
    todo "reload with a rotated certificate keeps the session"
}

check_nothing_acked_lost() {
    # TODO(daemon): record every ACK the client saw before the watchdog kill, then after the restart
    # count the stored records (horgosctl export --region CC); expect acked <= stored, 0 lost.
    [[ $mode == stand-in ]] || todo "after the watchdog restart every acked record is stored"
}

check_stop_under_load_keeps_acked() {
    # TODO(daemon): `systemctl stop` while the client streams; expect exit 0 (check_stop_drains_exit_0)
    # and every acked record stored, BYE received by the client.
    todo "stop under load: BYE sent, every acked record stored"
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
if [[ $mode == daemon ]]; then check_client_gets_acks; fi
check_watchdog_survives
check_reload
if [[ $mode == daemon ]]; then check_reload_keeps_session; fi
check_wedged_writer_watchdog_restart
if [[ $mode == daemon ]]; then check_stop_under_load_keeps_acked; fi
check_stop_drains_exit_0
check_socket_activated_privileged_port

echo "1..$checks"
if [[ $failed -gt 0 ]]; then
    say "$failed of $checks checks failed ($mode mode)"
    exit 1
fi
say "all $checks checks passed ($mode mode)"
