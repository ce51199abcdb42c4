#!/usr/bin/env bash
# Fuzzes the PROXY protocol v2 header parser with libFuzzer + AddressSanitizer (issue 14).
#
#   Scripts/fuzz-proxy.sh [seconds] [extra libFuzzer flags...]     (default: 600 s)
#
# Builds Benchmarks/ProxyFuzz with -sanitize=fuzzer,address -DHORGOS_FUZZ into .build-fuzz-proxy,
# seeds a scratch corpus (fuzz-corpus-work/proxy, git-ignored) from Proto/proxy-vectors/*.bin and
# runs on one core. A crash leaves crash-* files in fuzz-corpus-work/proxy-artifacts/; turn each
# into a vector under Proto/proxy-vectors/ and a unit test.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-600}"
shift || true

swift build -c release --product horgos-fuzz-proxy \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -DHORGOS_FUZZ \
    --scratch-path .build-fuzz-proxy
binary=".build-fuzz-proxy/release/horgos-fuzz-proxy"

mkdir -p fuzz-corpus-work/proxy fuzz-corpus-work/proxy-artifacts
cp -n Proto/proxy-vectors/*.bin fuzz-corpus-work/proxy/ 2>/dev/null || true

exec "$binary" fuzz-corpus-work/proxy \
    -max_total_time="$seconds" -max_len=2048 -print_final_stats=1 \
    -artifact_prefix=fuzz-corpus-work/proxy-artifacts/ "$@"
