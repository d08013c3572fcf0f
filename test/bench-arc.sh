#!/usr/bin/env bash
# test/bench-arc.sh [ROUNDS]: the inbound route's throughput with ARC
# verification and sealing off and on, same run (issue 16).
#
# Each round runs BenchmarkInboundARC (smtp/arc_bench_test.go) once: the
# four modes off, verify, seal, on in turn, 20 parallel loopback sessions,
# BENCH_ARC_MESSAGES (default 1000) messages each, the authentication check
# (SPF, DKIM, DMARC on a loopback DNS server) on in every mode. Rounds
# alternate the modes, so a shared machine's noise spreads over all; the
# script prints each round and, per mode, the median msg/s and the spread,
# and the median of each round's ratio to off's. ROUNDS defaults to 3.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
n=${BENCH_ARC_MESSAGES:-1000}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
go test -c -o "$out.bin" ./smtp/
trap 'rm -f "$out" "$out.bin"' EXIT
for r in $(seq "$rounds"); do
	(cd smtp && "$out.bin" -test.run '^$' -test.bench BenchmarkInboundARC -test.benchtime "${n}x") |
		awk -v r="$r" '/^BenchmarkInboundARC\// { split($1, a, "[=-]"); for (i = 1; i < NF; i++) if ($(i+1) == "msg/s") print r, a[2], $i }' | tee -a "$out"
done
echo "per mode over $rounds rounds: median msg/s (min-max), and the median of each round's ratio to off"
echo "(the ratio within a round is what a shared machine's drifting load distorts least):"
awk 'function isort(a, n,    i, j, t) { for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j > 0 && a[j] > t; j--) a[j+1] = a[j]; a[j+1] = t } }
{ v[$1, $2] = $3; if (!($2 in seen)) { seen[$2] = 1; order[++k] = $2 } }
END {
	for (m = 1; m <= k; m++) {
		mode = order[m]; n = 0
		for (r = 1; (r, mode) in v; r++) { x[++n] = v[r, mode]; y[n] = 100 * v[r, mode] / v[r, "off"] }
		isort(x, n); isort(y, n)
		printf "  %-7s %6.0f msg/s (%.0f-%.0f)  %5.1f %% of off (%.0f-%.0f %%)\n", mode, x[int((n+1)/2)], x[1], x[n], y[int((n+1)/2)], y[1], y[n]
		split("", x); split("", y)
	}
}' "$out"
