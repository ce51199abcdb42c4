#!/usr/bin/env bash
# Every test, in three `swift test` processes one after another (the README's test command).
#
# Why not one `swift test`: the suites of one process run in parallel, and on a 2-core machine the load
# of the listener suites (thousands of TLS sessions) beside the end-to-end suites (real daemons, their
# simulators and tools) makes every suite slower than it needs to be. No test blocks a thread of Swift's
# cooperative pool (child processes and blocking reads are awaited off the pool, see Tests/HorgosTestSupport),
# and every wait is for a condition with a generous bound, so the groups are about speed, not correctness.
# Groups: (1) everything without a network peer, (2) the server's listeners and sessions, (3) the real
# daemon end to end. The build is shared; every test target is in exactly one group.
set -euo pipefail
cd "$(dirname "$0")/.."
offline='HorgosWireTests|HorgosStoreTests|HorgosCtlTests|HorgosGBT32960Tests|HorgosProxyProtocolTests|HorgosSimulatorTests|DeployTests'
server='HorgosServerTests|HorgosIntegrationTests'
endToEnd='HorgosEndToEndTests'
targets=$(grep -A1 'testTarget(' Package.swift | grep -o 'name: "[A-Za-z0-9]*"' | sed 's/name: "\(.*\)"/\1/' | sort -u)
for target in $targets; do
    if ! printf '%s\n' "$offline|$server|$endToEnd" | tr '|' '\n' | grep -qx "$target"; then
        echo "Scripts/test.sh: test target $target is in no group; add it" >&2
        exit 2
    fi
done
swift test "$@" --filter "$offline"
swift test "$@" --skip-build --filter "$server"
swift test "$@" --skip-build --filter "$endToEnd"
