// libFuzzer target for the PROXY v2 parser (issue 14): Scripts/fuzz-proxy.sh.
import HorgosFuzzDriver

runFuzzer(product: "horgos-fuzz-proxy", script: "Scripts/fuzz-proxy.sh", fuzzOneInput)
