#!/usr/bin/env bash
# Production PKI for Horgos: a fleet CA, the server's certificate, an empty revocation list, and the
# daemon's copy of what it needs, with the permissions the hardened service expects.
#
#   pki-bootstrap.sh --host ingest.example.com [--host-alias ...] \
#                    [--ca-dir /root/horgos-ca] [--pki-dir /etc/horgos/pki] [--service-user horgos]
#                    [--gateway NAME --market CC]...
#
# Order (each step needs the one before):
#   1. horgosctl pki init --dir CA_DIR                       fleet CA: ca.crt + ca.key (CA_DIR 0700)
#   2. horgosctl pki issue server --dir CA_DIR --name HOST   server.crt + server.key, signed by the CA
#   3. copy ca.crt, server.crt, server.key into PKI_DIR (0750 root:horgos); server.key 0600 horgos
#   4. revoked.txt (empty deny list) in PKI_DIR, 0640 root:horgos
#   5. optional gateways: horgosctl pki issue gateway --dir CA_DIR --name N --market CC
# Vehicle certificates are issued later, per vehicle (RUNBOOK.md, "Issue certificates").
#
# The CA key never goes into PKI_DIR: the daemon only needs the CA certificate. Keep CA_DIR on this
# machine only as long as you issue certificates here; better, move it offline (RUNBOOK.md).
# Every private key is 0600, every directory holding one is 0700 (CA_DIR) or 0750 with the key
# owned by the service user (PKI_DIR). Refuses to overwrite an existing CA or server key.
#
# horgosctl contract this script relies on (pinned by Tests/HorgosCtlTests/PKICommandTests.swift):
#   pki init --dir D                       writes D/ca.crt, D/ca.key
#   pki issue server --dir D --name H      writes D/server.crt (leaf + chain), D/server.key
#   pki issue gateway --dir D --name N --market CC   writes D/gateway-N.crt, D/gateway-N.key
# File names can be overridden with HORGOS_PKI_{CA_CERT,CA_KEY,SERVER_CERT,SERVER_KEY} if they differ.
set -euo pipefail

HORGOSCTL=${HORGOSCTL:-}
ca_dir=/root/horgos-ca
pki_dir=/etc/horgos/pki
service_user=horgos
host=""
gateways=()
ca_cert=${HORGOS_PKI_CA_CERT:-ca.crt}
ca_key=${HORGOS_PKI_CA_KEY:-ca.key}
server_cert=${HORGOS_PKI_SERVER_CERT:-server.crt}
server_key=${HORGOS_PKI_SERVER_KEY:-server.key}

die() { echo "pki-bootstrap: $*" >&2; exit 1; }
step() { echo "==> $*"; }
usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

while [[ $# -gt 0 ]]; do
    case $1 in
        --host) host=${2:?--host needs a DNS name}; shift 2 ;;
        --ca-dir) ca_dir=${2:?}; shift 2 ;;
        --pki-dir) pki_dir=${2:?}; shift 2 ;;
        --service-user) service_user=${2:?}; shift 2 ;;
        --gateway)
            [[ ${3:-} == --market ]] || die "--gateway NAME must be followed by --market CC"
            gateways+=("${2:?}:${4:?--market needs a country code}"); shift 4 ;;
        -h | --help) usage 0 ;;
        *) echo "pki-bootstrap: unknown argument '$1'" >&2; usage 2 ;;
    esac
done
[[ -n $host ]] || die "--host <the DNS name vehicles connect to> is required"
if [[ -z $HORGOSCTL ]]; then
    HORGOSCTL=$(command -v horgosctl || true)
    [[ -n $HORGOSCTL ]] || HORGOSCTL=$(dirname "$(readlink -f "$0")")/../../bin/horgosctl
fi
[[ -x $HORGOSCTL ]] || die "horgosctl not found (put it in PATH or set HORGOSCTL=/path/to/horgosctl)"
id -u "$service_user" >/dev/null 2>&1 \
    || die "user '$service_user' does not exist: run systemd-sysusers first (install.sh does)"
service_group=$(id -gn "$service_user")
[[ $(id -u) -eq 0 ]] || die "run as root: the files are chowned to $service_user"

umask 077 # everything created below starts private; modes are then opened up file by file

expect_file() { # expect_file PATH WHAT
    [[ -f $1 ]] && return 0
    echo "pki-bootstrap: horgosctl did not produce $2 at $1; the directory holds:" >&2
    ls -la "$(dirname "$1")" >&2
    exit 1
}

# --- 1. Fleet CA ---------------------------------------------------------------------------------
if [[ -e $ca_dir/$ca_key ]]; then
    step "reusing the existing CA in $ca_dir (not re-initialised)"
else
    step "creating the fleet CA in $ca_dir"
    mkdir -p "$ca_dir"
    "$HORGOSCTL" pki init --dir "$ca_dir"
fi
chown root:root "$ca_dir"
chmod 0700 "$ca_dir"
expect_file "$ca_dir/$ca_cert" "the CA certificate"
expect_file "$ca_dir/$ca_key" "the CA key"
chmod 0600 "$ca_dir/$ca_key"
chmod 0644 "$ca_dir/$ca_cert"

# --- 2. Server certificate -----------------------------------------------------------------------
[[ ! -e $pki_dir/$server_key ]] || die "$pki_dir/$server_key exists: this host is bootstrapped already
(to rotate the server certificate, follow RUNBOOK.md, \"Rotate the server certificate\")"
step "issuing the server certificate for $host"
"$HORGOSCTL" pki issue server --dir "$ca_dir" --name "$host"
expect_file "$ca_dir/$server_cert" "the server certificate"
expect_file "$ca_dir/$server_key" "the server key"
chmod 0600 "$ca_dir/$server_key"

# --- 3. The daemon's copy ------------------------------------------------------------------------
step "installing the CA certificate, server certificate and key into $pki_dir"
mkdir -p "$pki_dir"
chown "root:$service_group" "$pki_dir"
chmod 0750 "$pki_dir"
install -o root -g "$service_group" -m 0644 "$ca_dir/$ca_cert" "$pki_dir/ca.crt"
install -o root -g "$service_group" -m 0644 "$ca_dir/$server_cert" "$pki_dir/server.crt"
install -o "$service_user" -g "$service_group" -m 0600 "$ca_dir/$server_key" "$pki_dir/server.key"
# The server key now lives with the daemon; the CA directory keeps only the CA itself.
rm -f "$ca_dir/$server_key"

# --- 4. Revocation list --------------------------------------------------------------------------
if [[ ! -e $pki_dir/revoked.txt ]]; then
    step "creating an empty revocation list $pki_dir/revoked.txt"
    install -o root -g "$service_group" -m 0640 /dev/null "$pki_dir/revoked.txt"
    cat >"$pki_dir/revoked.txt" <<'LIST'
# Horgos revocation list: one entry a line, read at start and on `systemctl reload horgosd`.
#   serial:<hex>   one certificate (serial as printed by horgosctl)
#   vin:<VIN>      every certificate of that vehicle
LIST
fi

# --- 5. Gateways ---------------------------------------------------------------------------------
for gateway in "${gateways[@]}"; do
    name=${gateway%%:*} market=${gateway##*:}
    step "issuing gateway certificate $name (market $market) in $ca_dir"
    "$HORGOSCTL" pki issue gateway --dir "$ca_dir" --name "$name" --market "$market"
    find "$ca_dir" -maxdepth 1 -name '*.key' -exec chmod 0600 {} +
done

cat <<DONE

PKI ready.
  CA (keep secret, ideally offline): $ca_dir   (0700; $ca_key 0600)
  Daemon's files:                    $pki_dir  (0750 root:$service_group)
      ca.crt, server.crt (0644), server.key (0600 $service_user), revoked.txt (0640)
Next:
  1. In /etc/horgos/horgosd.yaml set (the shipped example already does):
       tls.ca_certificate: $pki_dir/ca.crt        tls.server_certificate: $pki_dir/server.crt
       tls.server_key: $pki_dir/server.key        tls.revocation_list: $pki_dir/revoked.txt
  2. systemctl restart horgosd   (or reload if it already runs with these paths)
  3. Issue vehicle certificates: horgosctl pki issue vehicle --dir $ca_dir --vin VIN --market CC
  4. Back up $ca_dir to offline storage, then remove it from this server if you issue elsewhere.
DONE
