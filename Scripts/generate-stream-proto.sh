#!/usr/bin/env bash
# Regenerates Sources/HorgosStreamFormat/horgos_stream_v1.pb.swift from Proto/stream/horgos_stream_v1.proto.
#
# Dev-time only: the generated file is committed, so neither the build nor CI runs protoc (swift-protobuf's
# build plugin would add minutes to every clean build). Needs Debian's protoc (apt-get install
# protobuf-compiler) and protoc-gen-swift of the swift-protobuf version Package.swift resolves:
#
#   swift build -c release --package-path .build/checkouts/swift-protobuf --product protoc-gen-swift
#   Scripts/generate-stream-proto.sh .build/checkouts/swift-protobuf/.build/release/protoc-gen-swift
set -euo pipefail
cd "$(dirname "$0")/.."
plugin="${1:-$(command -v protoc-gen-swift || true)}"
[ -x "$plugin" ] || { echo "usage: $0 PATH/TO/protoc-gen-swift (see the comment at the top)" >&2; exit 2; }
command -v protoc >/dev/null || { echo "protoc is missing: apt-get install protobuf-compiler" >&2; exit 2; }
protoc --plugin=protoc-gen-swift="$plugin" --proto_path=Proto/stream --swift_opt=Visibility=Public \
    --swift_out=Sources/HorgosStreamFormat horgos_stream_v1.proto
echo "wrote Sources/HorgosStreamFormat/horgos_stream_v1.pb.swift"
