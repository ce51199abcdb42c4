#!/bin/sh
# `horgosctl pki` as Deploy/pki-bootstrap.sh calls it, done with openssl: REAL certificates (P-256,
# PKCS#8 keys, the same profile as HorgosPKI), for the nspawn test until horgosctl ships `pki`.
#   pki init --dir D                    D/ca.crt, D/ca.key
#   pki issue server --dir D --name H   D/server.crt, D/server.key (SAN H, localhost, 127.0.0.1, ::1)
# The nspawn test also uses `issue server` to rotate the server certificate before `systemctl reload`.
set -eu
umask 077
# No default openssl.cnf needed (in the test container /etc is empty: /usr/lib/ssl/openssl.cnf dangles).
export OPENSSL_CONF=/dev/null
ext=$(mktemp)
trap 'rm -f "$ext" "$ext.req"' EXIT
serial() { echo "0x$(openssl rand -hex 16 | sed 's/^./4/')"; }
case "$1 $2 $3" in
"pki init --dir")
    dir=$4
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/ca.key" 2>/dev/null
    printf '%s\n' '[req]' 'distinguished_name = dn' 'x509_extensions = ca' '[dn]' '[ca]' \
        'basicConstraints = critical, CA:TRUE' 'keyUsage = critical, keyCertSign, cRLSign' \
        'subjectKeyIdentifier = hash' >"$ext"
    openssl req -x509 -new -config "$ext" -key "$dir/ca.key" -sha256 -days 3652 -set_serial "$(serial)" \
        -subj "/O=Horgos/CN=Horgos Fleet CA (nspawn test)" -out "$dir/ca.crt"
    chmod 0644 "$dir/ca.crt"
    ;;
"pki issue server")
    dir=$5 name=${7:-localhost}
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/server.key" 2>/dev/null
    printf '%s\n' 'basicConstraints = critical, CA:FALSE' 'keyUsage = critical, digitalSignature' \
        'extendedKeyUsage = serverAuth' 'subjectKeyIdentifier = hash' 'authorityKeyIdentifier = keyid' \
        "subjectAltName = DNS:$name$([ "$name" = localhost ] || echo ", DNS:localhost"), IP:127.0.0.1, IP:::1" >"$ext"
    printf '%s\n' '[req]' 'distinguished_name = dn' '[dn]' >"$ext.req"
    openssl req -new -config "$ext.req" -key "$dir/server.key" -subj "/O=Horgos/CN=$name" \
        | openssl x509 -req -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -set_serial "$(serial)" -days 825 -sha256 \
            -extfile "$ext" -out "$dir/server.crt" 2>/dev/null
    chmod 0644 "$dir/server.crt"
    ;;
*)
    echo "horgosctl-pki-openssl: unexpected $*" >&2
    exit 64
    ;;
esac
