#!/usr/bin/env bash
# Token engine benchmarks (issue 2 targets). Prints the figures that
# docs/benchmarks.md records. Takes about two minutes on 2 cores.
#
#   Tokenize (known address), Resolve  >= 300k ops/s on one core (-cpu 1)
#   new durable tokens                 >= 10k/s with 50 concurrent callers
#   open a map of 1M tokens            < 1 s
set -euo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-3}

echo "## one core: Tokenize of a known address, Resolve"
go test -run '^$' -bench 'TokenizeKnown|Resolve$' -cpu 1 -benchtime 2s -count "$count" ./tokenize | grep -E '^Benchmark'
echo "## 50 concurrent callers creating durable tokens"
go test -run '^$' -bench 'TokenizeNew50' -benchtime 20000x -count "$count" ./tokenize | grep -E '^Benchmark'
echo "## open a map of 1,000,000 tokens and resolve one"
go test -run '^$' -bench 'Open1M' -benchtime 20x -count 1 -timeout 30m ./tokenize | grep -E '^Benchmark'
if [ "$(id -u)" = 0 ]; then
	echo "## the same, page cache dropped before each open (cold, as after a reboot)"
	TOKENPROXY_COLD=1 go test -run '^$' -bench 'Open1M' -benchtime 5x -count 1 -timeout 30m ./tokenize | grep -E '^Benchmark'
fi
