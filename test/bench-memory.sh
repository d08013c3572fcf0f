#!/usr/bin/env bash
# Peak memory of large messages (issue 17, item 7), one command. Targets:
#   a 15 MB text part                              <= 60 MB peak RSS
#   ten concurrent 5 MB text parts                 <= 200 MB
#   a 40 MB message with a 35 MB attachment        <= 64 MB
#
# Each figure is the peak resident set of a fresh child process:
#   rewrite  `proxy rewrite --route inbound < msg` (GNU time's %M, ru_maxrss)
#   route    `proxy serve`, the message(s) sent to its inbound route with swaks
#            (all sessions at once; Postfix's smtp-source for 200 sessions),
#            relayed to Postfix's smtp-sink; VmHWM from /proc/PID/status after
#            the last 250
# The messages come from test/memmsg: text parts 8bit or quoted-printable or
# HTML, with a customer address every ~2 KB (so every part is rewritten, the
# costly path), and a base64 attachment of random bytes after a 5 MB text part.
#
# With MEM_BASE=<git revision> the same runs are made with that revision's
# proxy too, in the same run (an A/B on the same machine state). The routes
# run with the inbound auth check on (the default: the message is spooled,
# encrypted, before it is rewritten), its DNS pointed at a closed loopback
# port so every look-up fails at once (temperror; nothing leaves the machine).
#
# Environment: MEM_BASE=REV  MEM_CASES="rewrite route"  MEM_KEEP=1 (keep the temporary directory)
set -euo pipefail
cd "$(dirname "$0")/.."

cases=${MEM_CASES:-rewrite route}
base_rev=${MEM_BASE:-}

say() { printf '%s\n' "$*" >&2; }
die() {
	printf 'bench-memory: error: %s\n' "$*" >&2
	exit 1
}

tmp=$(mktemp -d /tmp/bench-memory.XXXXXX)
chmod 755 "$tmp"
pids=()
cleanup() {
	local rc=$? pid
	trap - EXIT INT TERM
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	if [ "${MEM_KEEP:-}" = 1 ]; then say "kept $tmp"; else rm -rf "$tmp"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# free_port VAR: a loopback port nobody listens on, not handed out before,
# below Linux's ephemeral range (32768 and up), where a client connection
# of this machine could hold the port that was found free.
used_ports=" "
free_port() {
	local fp_port
	for _ in $(seq 200); do
		fp_port=$((20000 + RANDOM % 12000))
		[[ "$used_ports" == *" $fp_port "* ]] && continue
		if ! (: <"/dev/tcp/127.0.0.1/$fp_port") 2>/dev/null; then
			used_ports+="$fp_port "
			printf -v "$1" '%s' "$fp_port"
			return
		fi
	done
	die "no free loopback port found"
}

wait_port() {
	local port=$1 pid=$2 log=$3
	for _ in $(seq 400); do
		if (: <"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
		if ! kill -0 "$pid" 2>/dev/null; then
			cat "$log" >&2 || true
			return 1
		fi
		sleep 0.05
	done
	cat "$log" >&2 || true
	return 1
}

say "== tools (test/tools/install.sh)"
bash test/tools/install.sh >&2 || die "test/tools/install.sh failed"
sink_bin=$(command -v smtp-sink || echo /usr/sbin/smtp-sink)
[ -x "$sink_bin" ] || die "smtp-sink not found"
source_bin=$(command -v smtp-source || echo /usr/sbin/smtp-source)
[ -x "$source_bin" ] || die "smtp-source not found"
command -v swaks >/dev/null || die "swaks not found"
[ -x /usr/bin/time ] || die "/usr/bin/time not found (Debian package time)"

say "== build"
mkdir -p "$tmp/new" "$tmp/msg"
go build -o "$tmp/new/proxy" ./cmd/proxy
go build -o "$tmp/memmsg" ./test/memmsg
builds=(new)
if [ -n "$base_rev" ]; then
	mkdir -p "$tmp/base" "$tmp/src-base"
	git archive "$base_rev" | tar -x -C "$tmp/src-base"
	(cd "$tmp/src-base" && go build -o "$tmp/base/proxy" ./cmd/proxy)
	builds=(base new)
fi

say "== messages"
gen() { "$tmp/memmsg" "${@:2}" >"$tmp/msg/$1.eml"; }
gen text15 -kind text -size 15000000
gen qp15 -kind qp -size 15000000
gen html15 -kind html -size 15000000
gen htmlqp15 -kind htmlqp -size 15000000
gen html64_15 -kind html64 -size 15000000
gen text64_15 -kind text64 -size 15000000
gen latin15 -kind latin1 -size 15000000
gen gzip60 -kind gzip -size 60000000
gen text5 -kind text -size 5000000
gen qp5 -kind qp -size 5000000
gen attach40 -kind attach -size 35000000 -text 5000000
gen html250k -kind html -size 250000
tr -d '\r' <"$tmp/msg/html250k.eml" >"$tmp/msg/html250k-lf.eml" # smtp-source -F sends LF lines as CRLF

sink_port=
free_port sink_port
sink_user=()
[ "$(id -u)" -eq 0 ] && sink_user=(-u nobody)
"$sink_bin" "${sink_user[@]}" "127.0.0.1:$sink_port" 100 >"$tmp/sink.log" 2>&1 &
pids+=("$!")
wait_port "$sink_port" "$!" "$tmp/sink.log" || die "smtp-sink did not start"

free_port dead_dns # nothing listens there: every DNS look-up fails at once

# config BUILD PORT ADMIN: writes $tmp/BUILD/proxy.yaml, with the inbound
# route on PORT.
config() {
	local b=$1 cfg=$tmp/$1/proxy.yaml outp
	free_port outp
	mkdir -p "$tmp/$b/data"
	cat >"$cfg" <<-EOF
		data_dir: $tmp/$b/data
		relay_domain: relay.company.example
		internal_domains: [company.example, crm.example]
		mailboxes:
		  - {public: support@company.example, crm: support@crm.example}
		keys: {provider: local}
		log: {level: warn, format: json}
		inbound:
		  listen: 127.0.0.1:$2
		  hostname: mx.company.example
		  auth_check: {enabled: true, dns_server: "127.0.0.1:$dead_dns", dns_timeout: 1s}
		  downstream: {address: "127.0.0.1:$sink_port", tls: insecure}
		outbound:
		  listen: 127.0.0.1:$outp
		  hostname: relay.company.example
		  downstream: {address: "127.0.0.1:$sink_port", tls: insecure}
		admin: {listen: "127.0.0.1:$3"}
		smtp: {max_connections: 200, max_connections_per_ip: 200}
	EOF
}

declare -A result
row() { printf '%-8s %-34s %12s %12s\n' "$@"; }

# rewrite_case BUILD NAME: peak RSS in MiB of proxy rewrite.
rewrite_case() {
	local b=$1 m=$2
	if ! /usr/bin/time -f '%M' -o "$tmp/$b/rss" "$tmp/$b/proxy" --config "$tmp/$b/proxy.yaml" rewrite --route inbound \
		<"$tmp/msg/$m.eml" >/dev/null 2>"$tmp/$b/rewrite.log"; then
		say "$b: proxy rewrite $m failed: $(tail -1 "$tmp/$b/rewrite.log")"
		result[$b,rewrite,$m]=failed
		return
	fi
	result[$b,rewrite,$m]=$(awk '{ k = $1 } END { printf "%.0f", k / 1024 }' "$tmp/$b/rss")
}

# route_case BUILD LABEL NAME SESSIONS: peak RSS in MiB of a fresh proxy
# serve that received SESSIONS copies of NAME at once.
route_case() {
	local b=$1 label=$2 m=$3 n=$4 port admin cfg pid i failed=0 hwm
	free_port port
	free_port admin
	config "$b" "$port" "$admin"
	cfg=$tmp/$b/proxy.yaml
	"$tmp/$b/proxy" --config "$cfg" serve >"$tmp/$b/serve.log" 2>&1 &
	pid=$!
	pids+=("$pid")
	wait_port "$port" "$pid" "$tmp/$b/serve.log" || die "$b: proxy serve did not start"
	local spids=()
	if ((n > 20)); then
		"$source_bin" -s "$n" -m "$n" -f jane.doe@example.net -t support@company.example \
			-F "$tmp/msg/$m-lf.eml" "127.0.0.1:$port" >"$tmp/$b/swaks-1.log" 2>&1 &
		spids+=("$!")
	else
		for i in $(seq "$n"); do
			swaks --server "127.0.0.1:$port" --from jane.doe@example.net --to support@company.example \
				--data "@$tmp/msg/$m.eml" >"$tmp/$b/swaks-$i.log" 2>&1 &
			spids+=("$!")
		done
	fi
	for i in "${!spids[@]}"; do wait "${spids[$i]}" || failed=$((failed + 1)); done
	hwm=$(awk '/^VmHWM:/ { printf "%.0f", $2 / 1024 }' "/proc/$pid/status")
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	if ((failed > 0)); then
		say "$b, $label: $failed of $n sessions failed; e.g.: $(grep -h '^<~* *[45]' "$tmp/$b"/swaks-*.log | head -2 | tr '\n' ' ')"
		hwm="$hwm ($failed failed)"
	fi
	result[$b,route,$label]=$hwm
}

for b in "${builds[@]}"; do
	free_port p
	free_port a
	config "$b" "$p" "$a"
	# Warm up: the map, its keys and the data directory exist before anything is measured.
	"$tmp/$b/proxy" --config "$tmp/$b/proxy.yaml" rewrite --route inbound <"$tmp/msg/text5.eml" >/dev/null 2>&1 || true
	if [[ " $cases " == *" rewrite "* ]]; then
		for m in text15 qp15 html15 htmlqp15 html64_15 text64_15 latin15 attach40 gzip60; do
			say "$b: proxy rewrite $m"
			rewrite_case "$b" "$m"
		done
	fi
	if [[ " $cases " == *" route "* ]]; then
		say "$b: inbound route, text15 x1"; route_case "$b" "text15 x1" text15 1
		say "$b: inbound route, qp15 x1"; route_case "$b" "qp15 x1" qp15 1
		say "$b: inbound route, html15 x1"; route_case "$b" "html15 x1" html15 1
		for m in htmlqp15 html64_15 text64_15 latin15; do
			say "$b: inbound route, $m x1"; route_case "$b" "$m x1" "$m" 1
		done
		say "$b: inbound route, text5 x10"; route_case "$b" "text5 x10" text5 10
		say "$b: inbound route, qp5 x10"; route_case "$b" "qp5 x10" qp5 10
		say "$b: inbound route, attach40 x1"; route_case "$b" "attach40 x1" attach40 1
		say "$b: inbound route, html250k x200"; route_case "$b" "html250k x200" html250k 200
	fi
done

echo
echo "# peak RSS in MiB, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# text15 = 15 MB text/plain 8bit; qp15 = the same quoted-printable; html15 = 15 MB text/html 8bit;"
echo "# htmlqp15, html64_15 = 15 MB text/html quoted-printable, base64; text64_15 = 15 MB text/plain base64;"
echo "# latin15 = 15 MB text/plain ISO-8859-1 quoted-printable; gzip60 = a 13.7 MB .gz attachment expanding to 60 MB of text;"
echo "# text5, qp5 = 5 MB; attach40 = 5 MB text part + 35 MB base64 attachment (40 MB message);"
echo "# html250k x200 = 200 sessions at once, each a 250 KB text/html part (rewritten in pieces; held whole before)"
row case message "${base_rev:+base}" new
for c in rewrite route; do
	[[ " $cases " == *" $c "* ]] || continue
	if [ "$c" = rewrite ]; then
		labels=(text15 qp15 html15 htmlqp15 html64_15 text64_15 latin15 attach40 gzip60)
	else
		labels=("text15 x1" "qp15 x1" "html15 x1" "htmlqp15 x1" "html64_15 x1" "text64_15 x1" "latin15 x1" "text5 x10" "qp5 x10" "attach40 x1" "html250k x200")
	fi
	for l in "${labels[@]}"; do
		row "$c" "$l" "${result[base,$c,$l]:-}" "${result[new,$c,$l]:-}"
	done
done
