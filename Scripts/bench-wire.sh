#!/usr/bin/env bash
# Runs the HorgosWire parse benchmark (issue 2, item 7) in a release build.
#
#   Scripts/bench-wire.sh [--mib 64] [--repeat 5]
#
# Release build in .build-release (git-ignored). Pinned to one CPU with taskset when it exists, so the
# figures are single-core ones; on a shared machine run it twice and keep the better figures.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product horgos-bench-wire --scratch-path .build-release
binary=.build-release/release/horgos-bench-wire
if command -v taskset >/dev/null 2>&1; then
    exec taskset -c "${HORGOS_BENCH_CPU:-1}" "$binary" "$@"
fi
exec "$binary" "$@"
