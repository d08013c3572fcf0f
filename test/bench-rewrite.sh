#!/usr/bin/env bash
# Message rewriter benchmarks (issue 3 targets), one core each:
#   5 KB message with 5 known addresses  >= 20k msg/s
#   text-heavy mail (1 MB, plain / HTML) >= 100 MB/s
#   100 MB message with one attachment   <= 64 MiB peak RSS
#   15 MB text part (issue 17)           <= 60 MB peak RSS (plain and quoted-printable stream; HTML,
#                                        base64 and ISO-8859-1 are rewritten in pieces)
set -euo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-3}
go test -run '^$' -bench 'RewriteInbound5KB|RewriteTextHeavy' -cpu 1 -benchtime 2s -count "$count" ./rewrite | grep -E '^Benchmark'
go test -run '^$' -bench 'LargeMessageRSS|TextPartRSS' -benchtime 3x -count 1 ./rewrite | grep -E '^Benchmark'
go test -run '^$' -bench 'ReplaceAddresses' -cpu 1 -benchtime 1s -count 1 ./rewrite/scan | grep -E '^Benchmark'
