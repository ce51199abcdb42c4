#!/usr/bin/env bash
# Fuzzes the HorgosGBT32960 decoder with libFuzzer + AddressSanitizer (issue 12).
#
#   Scripts/fuzz-gbt32960.sh [seconds] [extra libFuzzer flags...]     (default: 600 s)
#
# Builds Benchmarks/GBT32960Fuzz with -sanitize=fuzzer,address -DHORGOS_FUZZ into .build-fuzz-gbt32960,
# seeds a scratch corpus (fuzz-corpus-work/gbt32960/, git-ignored) with every frame of
# Proto/gbt32960-vectors/gbt32960.txt and of the 2016/2025 rtm_con vectors
# (Tests/HorgosGBT32960Tests/Vectors/rtm_con.txt), and runs on one core. A crash leaves crash-* files in
# fuzz-corpus-work/gbt32960/artifacts/; turn each into a vector in Proto/gbt32960-vectors/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-600}"
shift || true

swift build -c release --product horgos-fuzz-gbt32960 \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -DHORGOS_FUZZ \
    --scratch-path .build-fuzz-gbt32960
binary=".build-fuzz-gbt32960/release/horgos-fuzz-gbt32960"

work=fuzz-corpus-work/gbt32960
mkdir -p "$work/corpus" "$work/artifacts"
awk '/^\[/{id=substr($0,2,length($0)-2)} /^hex:/{print id, $2}' Proto/gbt32960-vectors/gbt32960.txt \
    Tests/HorgosGBT32960Tests/Vectors/rtm_con.txt |
    while read -r id hex; do
        [ -e "$work/corpus/$id" ] || printf '%s' "$hex" | xxd -r -p > "$work/corpus/$id"
    done

exec "$binary" "$work/corpus" \
    -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/" "$@"
