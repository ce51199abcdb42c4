#!/usr/bin/env bash
# Install Horgos (binaries, systemd units, sysusers/tmpfiles snippets, example configuration).
#
#   sudo Deploy/install.sh                                  # build (release) and install on this host
#   DESTDIR=/tmp/root PREFIX=/usr/local Deploy/install.sh   # stage into a tree; the system is untouched
#   HORGOS_BIN_DIR=.build/debug DESTDIR=... Deploy/install.sh  # use already-built binaries
#
# Environment:
#   DESTDIR                   staging root; empty = the live system (then root is required)
#   PREFIX                    /usr/local; binaries in $PREFIX/bin, docs in $PREFIX/share/doc/horgos
#   HORGOS_BIN_DIR            directory holding horgosd, horgosctl, horgos-sim: skips the build
#   HORGOS_STATIC_STDLIB      1 (default) links the Swift runtime statically (release build only), so
#                             the server needs no Swift toolchain; 0 links it dynamically
#   HORGOS_SOCKET_ACTIVATION  1 installs the socket-activation drop-in (horgosd.socket passes port
#                             443 to the daemon); 0 (default) installs the socket unit but not the drop-in
#
# Layout: PREFIX=/usr (a distribution package) puts units and snippets in the vendor directories
# (/usr/lib/systemd/system, /usr/lib/sysusers.d, /usr/lib/tmpfiles.d); any other PREFIX puts them
# in /etc (/etc/systemd/system, /etc/sysusers.d, /etc/tmpfiles.d), because systemd only searches
# fixed directories. The configuration always lives in /etc/horgos: the unit points there.
#
# With DESTDIR set, only files under DESTDIR are written and no system tool (systemctl,
# systemd-sysusers, systemd-tmpfiles) is run. With DESTDIR empty, as root, it creates the user,
# applies the tmpfiles snippet and reloads systemd; it never starts, enables or restarts anything.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DESTDIR=${DESTDIR:-}
DESTDIR=${DESTDIR%/}
PREFIX=${PREFIX:-/usr/local}
PREFIX=${PREFIX%/}
HORGOS_STATIC_STDLIB=${HORGOS_STATIC_STDLIB:-1}
HORGOS_SOCKET_ACTIVATION=${HORGOS_SOCKET_ACTIVATION:-0}
products=(horgosd horgosctl horgos-sim)

die() { echo "install.sh: $*" >&2; exit 1; }
step() { echo "==> $*"; }

[[ $PREFIX == /* ]] || die "PREFIX must be an absolute path (got '$PREFIX')"
if [[ -z $DESTDIR && $(id -u) -ne 0 ]]; then
    die "installing on this system needs root; to stage into a directory set DESTDIR=/some/dir"
fi
if [[ -n $DESTDIR ]]; then
    [[ $DESTDIR == /* ]] || die "DESTDIR must be an absolute path (got '$DESTDIR')"
    [[ $DESTDIR != / ]] || die "DESTDIR=/ : leave DESTDIR empty to install on this system"
fi

if [[ $PREFIX == /usr ]]; then
    unitdir=/usr/lib/systemd/system sysusersdir=/usr/lib/sysusers.d tmpfilesdir=/usr/lib/tmpfiles.d
else
    unitdir=/etc/systemd/system sysusersdir=/etc/sysusers.d tmpfilesdir=/etc/tmpfiles.d
fi
bindir=$PREFIX/bin
sharedir=$PREFIX/share/horgos
docdir=$PREFIX/share/doc/horgos
confdir=/etc/horgos

# --- 1. Binaries ---------------------------------------------------------------------------------
if [[ -n ${HORGOS_BIN_DIR:-} ]]; then
    bin_src=$HORGOS_BIN_DIR
    step "using prebuilt binaries from $bin_src"
else
    build_flags=(-c release)
    [[ $HORGOS_STATIC_STDLIB == 1 ]] && build_flags+=(--static-swift-stdlib)
    for product in "${products[@]}"; do
        step "swift build ${build_flags[*]} --product $product"
        (cd "$repo" && swift build "${build_flags[@]}" --product "$product")
    done
    bin_src=$(cd "$repo" && swift build "${build_flags[@]}" --show-bin-path)
fi
for product in "${products[@]}"; do
    [[ -x $bin_src/$product ]] || die "$bin_src/$product is missing or not executable"
done

# put SRC DEST MODE: write DEST atomically (copy beside it, then rename), so a running daemon keeps
# its old inode and an interrupted install never leaves a half-written file.
put() {
    local src=$1 dest=$DESTDIR$2 mode=$3
    mkdir -p "$(dirname "$dest")"
    install -m "$mode" "$src" "$dest.horgos-new"
    mv -f "$dest.horgos-new" "$dest"
}
# put_text DEST MODE < content: the same, for generated content.
put_text() {
    local dest=$DESTDIR$1
    mkdir -p "$(dirname "$dest")"
    cat >"$dest.horgos-new"
    chmod "$2" "$dest.horgos-new"
    mv -f "$dest.horgos-new" "$dest"
}

step "binaries -> $DESTDIR$bindir"
for product in "${products[@]}"; do
    put "$bin_src/$product" "$bindir/$product" 0755
done

# --- 2. systemd units and snippets ---------------------------------------------------------------
# The shipped units name /usr/local/bin/horgosd and /usr/local/share/doc; point them at this PREFIX.
rewrite_unit() {
    sed -E -e "s%^ExecStart=/[^ ]*/horgosd( |$)%ExecStart=$bindir/horgosd\1%" \
        -e "s%^ExecReload=/[^ ]*/horgosctl( |$)%ExecReload=$bindir/horgosctl\1%" \
        -e "s|file:/usr/local/share/doc/horgos/|file:$docdir/|" "$1"
}
step "units -> $DESTDIR$unitdir"
rewrite_unit "$repo/systemd/horgosd.service" | put_text "$unitdir/horgosd.service" 0644
rewrite_unit "$repo/systemd/horgosd.socket" | put_text "$unitdir/horgosd.socket" 0644
rewrite_unit "$repo/systemd/horgosd-gbt32960.socket" | put_text "$unitdir/horgosd-gbt32960.socket" 0644
if [[ $HORGOS_SOCKET_ACTIVATION == 1 ]]; then
    step "socket activation drop-in -> $DESTDIR$unitdir/horgosd.service.d/"
    put "$repo/systemd/horgosd.service.d/socket-activation.conf" \
        "$unitdir/horgosd.service.d/socket-activation.conf" 0644
fi
step "sysusers.d, tmpfiles.d -> $DESTDIR$sysusersdir, $DESTDIR$tmpfilesdir"
put "$repo/systemd/horgos.sysusers.conf" "$sysusersdir/horgos.conf" 0644
put "$repo/systemd/horgos.tmpfiles.conf" "$tmpfilesdir/horgos.conf" 0644

# --- 3. Shared files and documentation -----------------------------------------------------------
step "examples and scripts -> $DESTDIR$sharedir, docs -> $DESTDIR$docdir"
put "$repo/Deploy/horgosd.yaml" "$sharedir/horgosd.yaml.example" 0644
put "$repo/Deploy/pki-bootstrap.sh" "$sharedir/pki-bootstrap.sh" 0755
put "$repo/systemd/horgosd.service.d/socket-activation.conf" "$sharedir/socket-activation.conf" 0644
put "$repo/Deploy/RUNBOOK.md" "$docdir/RUNBOOK.md" 0644
put "$repo/systemd/README.md" "$docdir/systemd-hardening.md" 0644

# --- 4. Configuration (never overwritten) --------------------------------------------------------
mkdir -p "$DESTDIR$confdir"
chmod 0755 "$DESTDIR$confdir"
if [[ -e $DESTDIR$confdir/horgosd.yaml ]]; then
    config_note="kept the existing $confdir/horgosd.yaml; compare with $sharedir/horgosd.yaml.example"
else
    put "$repo/Deploy/horgosd.yaml" "$confdir/horgosd.yaml" 0640
    config_note="installed $confdir/horgosd.yaml (the documented example); edit it before the first start"
fi
step "$config_note"

# --- 5. The live system only ---------------------------------------------------------------------
if [[ -z $DESTDIR ]]; then
    step "creating user horgos (systemd-sysusers), fixing /etc/horgos modes (systemd-tmpfiles)"
    systemd-sysusers "$sysusersdir/horgos.conf"
    systemd-tmpfiles --create "$tmpfilesdir/horgos.conf"
    if [[ -d /run/systemd/system ]]; then
        step "systemctl daemon-reload"
        systemctl daemon-reload
    else
        echo "    (systemd is not running here: no daemon-reload)"
    fi
fi

# --- 6. Next steps -------------------------------------------------------------------------------
if [[ -n $DESTDIR ]]; then
    cat <<NEXT

Staged into $DESTDIR (nothing on this system was changed). On the target host, after copying the
tree to /, run as root:
    systemd-sysusers $sysusersdir/horgos.conf
    systemd-tmpfiles --create $tmpfilesdir/horgos.conf
    systemctl daemon-reload
then follow the steps below.
NEXT
fi
if [[ $HORGOS_SOCKET_ACTIVATION == 1 ]]; then
    start_cmd="systemctl enable --now horgosd.socket horgosd.service"
else
    start_cmd="systemctl enable --now horgosd.service"
fi
cat <<NEXT

Next steps (details: $docdir/RUNBOOK.md):
  1. Edit $confdir/horgosd.yaml: regions, listen addresses, tls.* paths.
  2. Production PKI: $sharedir/pki-bootstrap.sh --host <server DNS name>
     (until then the daemon makes a development PKI under its state directory, with a warning).
  3. Start:      $start_cmd
  4. Check:      systemctl status horgosd; journalctl -u horgosd -f; $bindir/horgosctl status
  5. Hardening:  systemd-analyze security horgosd.service   (expected exposure 1.1)
NEXT
