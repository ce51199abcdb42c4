#!/usr/bin/env bash
# Static checks of the shipped systemd units; exits non-zero on any problem.
#
#   Deploy/check-units.sh                 # the units in systemd/ of this repository
#   Deploy/check-units.sh --unit-dir DIR  # installed units (e.g. $DESTDIR/etc/systemd/system)
#
# 1. `systemd-analyze verify` on horgosd.service (+ its drop-ins) and both sockets must print
#    nothing at all: it exits 0 on unknown keys or bad values, so its output is the verdict.
#    verify also wants ExecStart='s binary to exist, so it runs on copies whose ExecStart points at a
#    stand-in executable.
# 2. `systemd-analyze security --offline=true --threshold=15` must pass: overall exposure <= 1.5.
# 3. The directives the daemon's own behaviour depends on are present (Type=notify, NotifyAccess=main,
#    AF_UNIX kept for the notify socket, ...): a hardening edit must not silently break the daemon.
# 4. The sysusers.d and tmpfiles.d snippets apply cleanly to a scratch root (never to this system).
# Touches nothing outside a temporary directory.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
unit_dir="$repo/systemd"
snippet_dir="$repo/systemd"
if [[ ${1:-} == --unit-dir ]]; then
    unit_dir=${2:?--unit-dir needs a directory}
    snippet_dir=""
fi
max_exposure=1.5

failures=0
fail() { echo "check-units: FAIL: $*" >&2; failures=$((failures + 1)); }
for tool in systemd-analyze systemd-sysusers systemd-tmpfiles; do
    command -v "$tool" >/dev/null || { echo "check-units: $tool not found (apt-get install systemd)" >&2; exit 2; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/horgos-check-units.XXXXXX")
trap 'rm -rf "$work"' EXIT

service="$unit_dir/horgosd.service"
socket="$unit_dir/horgosd.socket"
gbt_socket="$unit_dir/horgosd-gbt32960.socket"
[[ -f $service ]] || { fail "missing $service"; exit 1; }
[[ -f $socket ]] || { fail "missing $socket"; exit 1; }
[[ -f $gbt_socket ]] || { fail "missing $gbt_socket"; exit 1; }

# --- 1. systemd-analyze verify -------------------------------------------------------------------
mkdir -p "$work/units/horgosd.service.d" "$work/bin"
printf '#!/bin/sh\nexit 0\n' >"$work/bin/horgosd"
chmod 0755 "$work/bin/horgosd"
cp "$work/bin/horgosd" "$work/bin/horgosctl"
sed -E -e "s%^ExecStart=/[^ ]*/horgosd( |$)%ExecStart=$work/bin/horgosd\1%" \
    -e "s%^ExecReload=/[^ ]*/horgosctl( |$)%ExecReload=$work/bin/horgosctl\1%" "$service" >"$work/units/horgosd.service"
cp "$socket" "$work/units/horgosd.socket"
cp "$gbt_socket" "$work/units/horgosd-gbt32960.socket"
if [[ -d $unit_dir/horgosd.service.d ]]; then
    cp "$unit_dir"/horgosd.service.d/*.conf "$work/units/horgosd.service.d/" 2>/dev/null || true
fi
grep -q "^ExecStart=$work/bin/horgosd " "$work/units/horgosd.service" \
    || fail "ExecStart= in $service is not '/<dir>/horgosd --config ...'"

verify_out=$(cd "$work" && systemd-analyze verify "$work/units/horgosd.service" "$work/units/horgosd.socket" \
    "$work/units/horgosd-gbt32960.socket" 2>&1) \
    || fail "systemd-analyze verify exited $?"
if [[ -n $verify_out ]]; then
    fail "systemd-analyze verify printed:"
    printf '%s\n' "$verify_out" | sed "s|$work/units/|$unit_dir/|g" >&2
fi

# --- 2. systemd-analyze security -----------------------------------------------------------------
security_status=0
security_out=$(systemd-analyze security --offline=true --threshold=15 "$work/units/horgosd.service" 2>&1) \
    || security_status=$?
exposure=$(printf '%s\n' "$security_out" | sed -nE 's/.*Overall exposure level for [^:]*: ([0-9.]+).*/\1/p')
if [[ -z $exposure ]]; then
    fail "no exposure figure in systemd-analyze security output:"
    printf '%s\n' "$security_out" >&2
elif [[ $security_status -ne 0 ]] || ! awk -v e="$exposure" -v m="$max_exposure" 'BEGIN { exit !(e <= m) }'; then
    fail "exposure $exposure is above $max_exposure (systemd-analyze exit $security_status); what is exposed:"
    printf '%s\n' "$security_out" | grep '✗' >&2 || true
fi

# --- 3. Directives the daemon depends on ---------------------------------------------------------
# value_of KEY: the last assignment of KEY in the service and its drop-ins (later ones win).
value_of() {
    local files=("$work/units/horgosd.service")
    shopt -s nullglob
    files+=("$work"/units/horgosd.service.d/*.conf)
    shopt -u nullglob
    sed -n "s/^$1=//p" "${files[@]}" | tail -n 1
}
expect() { # expect KEY VALUE
    local got
    got=$(value_of "$1")
    [[ $got == "$2" ]] || fail "$1=$got, expected $1=$2 in horgosd.service"
}
expect Type notify
expect NotifyAccess main
expect WatchdogSec 30s
expect Restart on-failure
expect TimeoutStopSec 30s
expect User horgos
expect StateDirectory horgos
expect ConfigurationDirectory horgos
expect RuntimeDirectory horgos
expect LimitNOFILE 1048576
expect ExecReload "$work/bin/horgosctl reload --config /etc/horgos/horgosd.yaml --pid \$MAINPID"
families=" $(value_of RestrictAddressFamilies) "
for family in AF_UNIX AF_INET AF_INET6; do
    [[ $families == *" $family "* ]] \
        || fail "RestrictAddressFamilies= lacks $family (AF_UNIX carries sd_notify; AF_INET/6 the listeners)"
done
grep -q '^FileDescriptorName=telemetry$' "$socket" \
    || fail "horgosd.socket must name its socket 'telemetry' (FileDescriptorName=telemetry)"
grep -q '^Service=horgosd.service$' "$socket" || fail "horgosd.socket must say Service=horgosd.service"
grep -q '^FileDescriptorName=gbt32960$' "$gbt_socket" \
    || fail "horgosd-gbt32960.socket must name its socket 'gbt32960' (FileDescriptorName=gbt32960)"
grep -q '^Service=horgosd.service$' "$gbt_socket" \
    || fail "horgosd-gbt32960.socket must say Service=horgosd.service"

# --- 4. sysusers.d / tmpfiles.d snippets, applied to a scratch root ------------------------------
if [[ -n $snippet_dir ]]; then
    root="$work/root"
    mkdir -p "$root/etc/horgos/pki"
    : >"$root/etc/passwd"; : >"$root/etc/group"; : >"$root/etc/shadow"; : >"$root/etc/gshadow"
    : >"$root/etc/horgos/horgosd.yaml"; : >"$root/etc/horgos/pki/server.key"
    if ! out=$(systemd-sysusers --root="$root" "$snippet_dir/horgos.sysusers.conf" 2>&1) \
        || grep -qiE 'fail|ignor|invalid|unknown' <<<"$out"; then
        fail "systemd-sysusers on horgos.sysusers.conf: $out"
    fi
    grep -q '^horgos:' "$root/etc/passwd" || fail "horgos.sysusers.conf did not create user horgos"
    if ! out=$(systemd-tmpfiles --root="$root" --create "$snippet_dir/horgos.tmpfiles.conf" 2>&1) \
        || [[ -n $out ]]; then
        fail "systemd-tmpfiles on horgos.tmpfiles.conf: $out"
    fi
    uid=$(awk -F: '$1 == "horgos" { print $3 }' "$root/etc/passwd")
    check_mode() { # check_mode PATH MODE OWNER_UID GROUP_UID
        local got
        got=$(stat -c '%a %u %g' "$root$1")
        [[ $got == "$2 $3 $4" ]] || fail "tmpfiles: $1 is '$got' (mode uid gid), expected '$2 $3 $4'"
    }
    check_mode /etc/horgos 755 0 0
    check_mode /etc/horgos/horgosd.yaml 640 0 "$uid"
    check_mode /etc/horgos/pki 750 0 "$uid"
    check_mode /etc/horgos/pki/server.key 600 "$uid" "$uid"
fi

if [[ $failures -gt 0 ]]; then
    echo "check-units: $failures problem(s) in $unit_dir" >&2
    exit 1
fi
echo "check-units: OK: $unit_dir: verify clean, exposure $exposure (limit $max_exposure)"
