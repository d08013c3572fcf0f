#!/usr/bin/env bash
# Issue 5's budget: auditing costs the inbound route at most 10 %. Runs
# BenchmarkInboundAudit (smtp/audit_bench_test.go: 20 loopback sessions, a
# real token map and, with auditing on, a real trail with fdatasync) with
# auditing off and on in alternation, PAIRS times per sender kind, so that
# drift in the machine's load hits both sides alike, and prints the
# medians and the cost. About 2 minutes on 2 cores.
#
#   PAIRS=6  MESSAGES=10000 (per run)  BENCH_AUDIT_SYNC=false (trail without fdatasync)
set -euo pipefail
cd "$(dirname "$0")/.."
pairs=${PAIRS:-6}
messages=${MESSAGES:-10000}
bin=$(mktemp -d)/smtp.test
trap 'rm -rf "$(dirname "$bin")"' EXIT
go test -c -o "$bin" ./smtp/

median() { sort -n | awk '{v[NR]=$1} END {if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }

run() { # senders audit -> msg/s
	"$bin" -test.run '^$' -test.bench "BenchmarkInboundAudit/senders=$1/audit=$2\$" -test.benchtime "${messages}x" |
		awk '/msg\/s/ {for (i = 1; i < NF; i++) if ($(i+1) == "msg/s") print $i}'
}

echo "# inbound route, 20 sessions, $messages messages per run, $pairs alternating pairs, audit sync: ${BENCH_AUDIT_SYNC:-true}"
printf '%-8s %-40s %-40s %8s %8s %6s\n' senders "audit off msg/s" "audit on msg/s" "off med" "on med" cost
for senders in known new; do
	off=() on=()
	for _ in $(seq "$pairs"); do
		off+=("$(run "$senders" false)")
		on+=("$(run "$senders" true)")
	done
	moff=$(printf '%s\n' "${off[@]}" | median)
	mon=$(printf '%s\n' "${on[@]}" | median)
	cost=$(awk -v a="$moff" -v b="$mon" 'BEGIN {printf "%.1f%%", (a - b) / a * 100}')
	printf '%-8s %-40s %-40s %8.0f %8.0f %6s\n' "$senders" "${off[*]}" "${on[*]}" "$moff" "$mon" "$cost"
done
