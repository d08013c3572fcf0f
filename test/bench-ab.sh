#!/usr/bin/env bash
# test/bench-ab.sh REV [ROUNDS]: same-run A/B of the rewriter and the inbound
# route between REV (A) and the work tree (B), for changes that must not
# move performance (a refactoring). Each round runs, alternately A then B:
#   - the rewriter benchmarks of test/bench-rewrite.sh (RewriteInbound5KB,
#     RewriteTextHeavy; one core), from whichever package holds them at
#     that revision (tokenize before the rewrite/ package existed);
#   - test/bench-smtp.sh targets g and d at 20 sessions, 5 KB (d = the
#     inbound route, g = the pooled go-smtp relay, the reference);
#   - the token map benchmarks of test/bench-tokens.sh (TokenizeKnown,
#     Resolve on one core; TokenizeNew50: durable new tokens, 50 callers).
# BENCH_AB_PARTS="rewrite smtp tokens" (the default) picks the parts.
# It prints each round's figures and, per measure, the median of A and B and
# the spread (min-max) of each, so the note can say "within noise".
# ROUNDS defaults to 3. REV is checked out in a temporary worktree.
set -euo pipefail
cd "$(dirname "$0")/.."
rev=${1:?usage: test/bench-ab.sh REV [ROUNDS]}
rounds=${2:-3}
wt=$(mktemp -d /tmp/bench-ab.XXXXXX)
out=$(mktemp)
trap 'git worktree remove --force "$wt" >/dev/null 2>&1 || rm -rf "$wt"; rm -f "$out"' EXIT
git worktree add -q --detach "$wt" "$rev"

# rewrite_pkg DIR: the package holding BenchmarkRewriteInbound5KB in DIR.
rewrite_pkg() {
	local f
	f=$(grep -rl --include='*_test.go' 'func BenchmarkRewriteInbound5KB' "$1" | head -1)
	echo "./$(dirname "${f#"$1"/}")"
}

parts=" ${BENCH_AB_PARTS:-rewrite smtp tokens} "

# gobench SIDE: go test -bench output on stdin as "SIDE measure value".
gobench() {
	awk -v s="$1" '/^Benchmark/ { for (i = 3; i < NF; i++) if ($(i+1) == "ns/op" || $(i+1) == "MB/s" || $(i+1) == "tokens/s") print s, $1 "(" $(i+1) ")", $i }'
}

# one SIDE DIR: one round of SIDE (A or B) in DIR, lines "SIDE measure value".
one() {
	local side=$1 dir=$2
	if [[ "$parts" == *" rewrite "* ]]; then
		(cd "$dir" && go test -run '^$' -bench 'RewriteInbound5KB$|RewriteTextHeavy' -cpu 1 -benchtime 2s -count 1 "$(rewrite_pkg "$dir")") | gobench "$side"
	fi
	if [[ "$parts" == *" tokens "* ]]; then
		(cd "$dir" && go test -run '^$' -bench 'TokenizeKnown|Resolve$' -cpu 1 -benchtime 1s -count 1 ./tokenize) | gobench "$side"
		(cd "$dir" && go test -run '^$' -bench 'TokenizeNew50' -benchtime 20000x -count 1 ./tokenize) | gobench "$side"
	fi
	if [[ "$parts" == *" smtp "* ]]; then
		(cd "$dir" && BENCH_TARGETS="g d" BENCH_SESSIONS=20 BENCH_SIZES=5 BENCH_LATENCY=0 bash test/bench-smtp.sh 2>/dev/null) |
			awk -v s="$side" '$1 ~ /^[gd]$/ && $2 == 20 { print s, "smtp-" $1 "(msg/s)", $6 } /d\/g/ { for (i = 1; i <= NF; i++) if ($i == "d/g") print s, "smtp-d/g", $(i+1) }'
	fi
}

for r in $(seq "$rounds"); do
	echo "# round $r" >&2
	one A "$wt" | tee -a "$out"
	one B "$PWD" | tee -a "$out"
done

echo
echo "# A = $rev ($(git -C "$wt" log -1 --format=%h)), B = work tree ($(git log -1 --format=%h)$(git diff --quiet || echo ', modified')); $rounds rounds, alternating"
awk '
	{ v[$2, $1] = v[$2, $1] " " $3; names[$2] = 1 }
	function stats(list,   a, n, i, j, t) {
		n = split(list, a, " ")
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
		return sprintf("%s (%s-%s)", a[int((n + 1) / 2)], a[1], a[n])
	}
	END { for (m in names) printf "%-36s A %-28s B %s\n", m, stats(v[m, "A"]), stats(v[m, "B"]) }
' "$out" | sort
