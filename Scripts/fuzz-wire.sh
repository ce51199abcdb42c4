#!/usr/bin/env bash
# Fuzzes the HorgosWire parser with libFuzzer + AddressSanitizer (issue 2, item 6).
#
#   Scripts/fuzz-wire.sh [seconds] [extra libFuzzer flags...]     (default: 600 s)
#
# Builds Benchmarks/WireFuzz with -sanitize=fuzzer,address -DHORGOS_FUZZ into .build-fuzz, copies the
# committed seed corpus (Proto/fuzz-corpus, one file per test vector) into a scratch corpus
# (fuzz-corpus-work/, git-ignored) and runs on one core. A crash leaves crash-* / leak-* files in
# fuzz-corpus-work/artifacts/; turn each into a regression vector in Proto/vectors/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-600}"
shift || true

swift build -c release --product horgos-fuzz-wire \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -DHORGOS_FUZZ \
    --scratch-path .build-fuzz
binary=".build-fuzz/release/horgos-fuzz-wire"

mkdir -p fuzz-corpus-work/corpus fuzz-corpus-work/artifacts
cp -n Proto/fuzz-corpus/* fuzz-corpus-work/corpus/ 2>/dev/null || true

exec "$binary" fuzz-corpus-work/corpus \
    -max_total_time="$seconds" -max_len=70000 -print_final_stats=1 \
    -artifact_prefix=fuzz-corpus-work/artifacts/ "$@"
