#!/usr/bin/env bash
# SMTP relay benchmarks on loopback, one command. Prints msg/s and latency for
#
#   a  smtp-source -> smtp-sink                     (the tools' own ceiling)
#   b  smtp-source -> Postfix relay -> smtp-sink    (a private Postfix instance: queue, fsync)
#   c  smtp-source -> test/passrelay -> smtp-sink   (bare go-smtp pass-through: a downstream
#                                                     connection per message, -pool 0)
#   g  smtp-source -> test/passrelay -pool 32 -> smtp-sink  (c with a pooled downstream, as
#                                                     tokenproxy's: a stricter reference than c)
#   d  smtp-source -> tokenproxy inbound -> smtp-sink   (proxy serve; skipped while it does not exist)
#   e  smtpload (STARTTLS, AUTH PLAIN) -> tokenproxy outbound -> smtp-sink
#   f  smtpload (STARTTLS, AUTH PLAIN) -> test/passrelay -user -> smtp-sink
#                            (g plus the outbound route's STARTTLS and argon2id AUTH)
#
# for 1, 20 and 100 parallel sessions and 5 KB and 100 KB messages, then the
# ratios d/a, d/b, d/c, d/g and e/g, e/f at 20 sessions, 5 KB. About 4 to 5 minutes on
# 2 cores.
#
# Targets a-d get the same message: a generated customer reply whose
# headers and body name three external addresses (smtp-source -F sends a
# file as it is), from customer@example.net to support@company.example,
# several messages per connection (smtp-source -d). msg/s is smtp-source's
# count divided by its wall time. Latency (DATA sent -> 250 after the dot,
# p50/p90/p99 in ms) comes from test/smtpload, a Go client, in a second,
# shorter run; its own msg/s ("lat msg/s") is lower than smtp-source's as it
# needs more of the CPU the targets share. For Postfix, msg/s counts accepted
# (queued) messages; the note gives the rate until the queue had drained.
#
# The outbound route (e) requires STARTTLS and then AUTH or an allowed client
# network, which smtp-source cannot do: e and f are driven by smtpload alone,
# like a CRM connector. Each session connects, runs STARTTLS (the server's
# self-signed certificate, verified), AUTHs as user "crm" (an argon2id hash
# from `proxy hash-password`; client_networks is empty, so AUTH is required),
# then sends CRM replies to BENCH_TOKENS customer tokens (made with `proxy
# token new` before serve starts), each naming three tokens, for
# BENCH_RUN_SECONDS over the same connection. All sessions are set up before
# the clock starts: msg/s and latency are the steady state, and the set-up
# (TLS handshake and AUTH, once per session) is reported in the note. There
# is no second latency run for e and f: msg/s and "lat msg/s" are one figure.
#
# Tools come from test/tools/install.sh (swaks, postfix: smtp-sink,
# smtp-source). Postfix (b) needs root; without it b is skipped.
#
# Environment:
#   BENCH_TARGETS="a b c d e f"  BENCH_SESSIONS="1 20 100"  BENCH_SIZES="5 100" (KB)
#   BENCH_COUNT=N          messages per smtp-source run (default: calibrated
#                          so that a run takes about BENCH_RUN_SECONDS=3);
#                          for e and f: N messages over the sessions instead
#                          of BENCH_RUN_SECONDS of them
#   BENCH_TOKENS=50        customer tokens the outbound replies go to (e)
#   BENCH_MAX_SECONDS=600  time budget; runs past it are skipped
#   BENCH_LATENCY=0        no smtpload latency runs
#   BENCH_KEEP=1           keep the temporary directory (logs, Postfix maillog)
#   BENCH_AUTH_CHECK=true  d also verifies SPF/DKIM/DMARC (needs a resolver that answers;
#                          off by default: the relay itself is what is compared)
#   BENCH_AUDIT_SYNC=false d, e: audit records without fdatasync (default true, as
#                          shipped: e writes one group-committed record per message)
set -euo pipefail
cd "$(dirname "$0")/.."

targets=${BENCH_TARGETS:-a b c g d e f}
sessions_list=${BENCH_SESSIONS:-1 20 100}
sizes=${BENCH_SIZES:-5 100}
fixed_count=${BENCH_COUNT:-}
auth_check=${BENCH_AUTH_CHECK:-false}
audit_sync=${BENCH_AUDIT_SYNC:-true}
run_seconds=${BENCH_RUN_SECONDS:-3}
max_seconds=${BENCH_MAX_SECONDS:-600}
n_tokens=${BENCH_TOKENS:-50}
latency=${BENCH_LATENCY:-1}
from=customer@example.net
to=support@company.example
crm_from=support@crm.example # the CRM mailbox the replies of e and f come from
auth_user=crm
started=$(date +%s)

say() { printf '%s\n' "$*" >&2; }
die() {
	printf 'bench-smtp: error: %s\n' "$*" >&2
	exit 1
}
now() { date +%s.%N; }
# calc prints an awk expression's value with 2 decimals: calc "3000 / 4.2".
calc() { awk "BEGIN { printf \"%.2f\", $1 }"; }

tmp=$(mktemp -d /tmp/bench-smtp.XXXXXX)
chmod 755 "$tmp" # Postfix's daemons (user postfix) walk into its queue here
pids=()
postfix_dir=
postfix_bin=

cleanup() {
	local rc=$? pid master_pid
	trap - EXIT INT TERM
	if [ -n "$postfix_dir" ]; then
		"$postfix_bin" -c "$postfix_dir/etc" stop >/dev/null 2>&1 || true
		master_pid=$(tr -d ' ' <"$postfix_dir/spool/pid/master.pid" 2>/dev/null || true)
		for _ in $(seq 50); do
			if [ -z "$master_pid" ] || ! kill -0 "$master_pid" 2>/dev/null; then break; fi
			sleep 0.1
		done
		if [ -n "$master_pid" ]; then kill -9 "$master_pid" 2>/dev/null || true; fi
	fi
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do
		for _ in $(seq 30); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	if [ "${BENCH_KEEP:-}" = 1 ]; then
		say "kept $tmp"
	else
		rm -rf "$tmp"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# free_port VAR sets VAR to a loopback port nobody listens on and that was not
# handed out before (smtp-sink and Postfix cannot report a port picked for
# :0). It sets a variable instead of printing so that it runs in this shell
# and remembers what it handed out.
used_ports=" "
free_port() {
	local fp_port # not "p": printf -v would set this local instead of the caller's
	for _ in $(seq 200); do
		fp_port=$((20000 + RANDOM % 40000))
		[[ "$used_ports" == *" $fp_port "* ]] && continue
		if ! (: <"/dev/tcp/127.0.0.1/$fp_port") 2>/dev/null; then
			used_ports+="$fp_port "
			printf -v "$1" '%s' "$fp_port"
			return
		fi
	done
	die "no free loopback port found"
}

# wait_port PORT PID NAME LOG: waits until something accepts on PORT; fails
# when PID (if given) exits first or after 10 s, showing LOG.
wait_port() {
	local port=$1 pid=$2 name=$3 log=$4
	for _ in $(seq 200); do
		if (: <"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
		if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
			say "$name exited; its log:"
			cat "$log" >&2 2>/dev/null || true
			return 1
		fi
		sleep 0.05
	done
	say "$name not listening on 127.0.0.1:$port after 10 s; its log:"
	cat "$log" >&2 2>/dev/null || true
	return 1
}

# ---- tools and builds ------------------------------------------------------
say "== tools (test/tools/install.sh)"
bash test/tools/install.sh >&2 || die "test/tools/install.sh failed"
tool() {
	if command -v "$1" 2>/dev/null; then return; fi
	[ -x "/usr/sbin/$1" ] || die "$1 not found after test/tools/install.sh"
	echo "/usr/sbin/$1"
}
sink_bin=$(tool smtp-sink)
source_bin=$(tool smtp-source)
postfix_bin=$(tool postfix)
postconf_bin=$(tool postconf)

say "== build: passrelay, smtpload, proxy ($tmp/bin)"
mkdir -p "$tmp/bin"
go build -o "$tmp/bin/passrelay" ./test/passrelay
go build -o "$tmp/bin/smtpload" ./test/smtpload
proxy_skip=
if ! go build -o "$tmp/bin/proxy" ./cmd/proxy 2>"$tmp/proxy-build.log"; then
	proxy_skip="go build ./cmd/proxy failed: $(head -3 "$tmp/proxy-build.log" | tr '\n' ' ')"
elif ! "$tmp/bin/proxy" serve --help >/dev/null 2>&1; then
	proxy_skip="'proxy serve' is not available yet ('proxy serve --help' fails)"
fi

for kb in $sizes; do
	"$tmp/bin/smtpload" -size $((kb * 1024)) -to "$to" -write-message "$tmp/msg-${kb}k.eml"
done

# ---- the sink ----------------------------------------------------------------
sink_port=
free_port sink_port
sink_user=()
[ "$(id -u)" -eq 0 ] && sink_user=(-u nobody) # smtp-sink refuses to keep root privileges
"$sink_bin" "${sink_user[@]}" -m 2000 "127.0.0.1:$sink_port" 2000 >"$tmp/sink.log" 2>&1 &
sink_pid=$!
pids+=("$sink_pid")
wait_port "$sink_port" "$sink_pid" smtp-sink "$tmp/sink.log" || die "smtp-sink did not start"
say "smtp-sink on 127.0.0.1:$sink_port"

declare -A port skip rate lrate ca
port[a]=$sink_port

# The AUTH password of e and f: random, in a file only (never on a command line).
(umask 077 && head -c 18 /dev/urandom | base64 >"$tmp/auth-password")

# ---- b: a private Postfix relay --------------------------------------------------
start_postfix() {
	if [ "$(id -u)" -ne 0 ]; then
		skip[b]="Postfix needs root to start its master"
		return
	fi
	local d=$tmp/postfix p
	free_port p
	mkdir -p "$d/etc" "$d/spool" "$d/data"
	chown postfix:postfix "$d/data"
	# A non-default instance: its own config, queue and data directories.
	# No local delivery (mydestination empty, local_transport error); mail
	# from 127.0.0.0/8 is relayed to the sink; logs go to a file, as there
	# is no syslog here (maillog_file needs its prefix allowed).
	cat >"$d/etc/main.cf" <<-EOF
		compatibility_level = 3.6
		config_directory = $d/etc
		queue_directory = $d/spool
		data_directory = $d/data
		mail_owner = postfix
		setgid_group = postdrop
		myhostname = bench-relay.localdomain
		mydomain = localdomain
		myorigin = \$myhostname
		mydestination =
		local_recipient_maps =
		local_transport = error:local delivery is disabled
		alias_maps =
		alias_database =
		inet_interfaces = loopback-only
		inet_protocols = ipv4
		mynetworks = 127.0.0.0/8
		relayhost = [127.0.0.1]:$sink_port
		smtpd_relay_restrictions = permit_mynetworks, reject
		smtpd_peername_lookup = no
		smtpd_tls_security_level = none
		smtp_tls_security_level = none
		smtp_dns_support_level = disabled
		default_process_limit = 250
		maillog_file = $d/maillog
		maillog_file_prefixes = $d
		biff = no
	EOF
	# Debian's master.cf chroots most daemons into the queue directory, which
	# then needs copies of /etc files; this instance chroots none.
	cat >"$d/etc/master.cf" <<-EOF
		127.0.0.1:$p inet n - n - - smtpd
		pickup     unix n - n 60 1 pickup
		cleanup    unix n - n - 0 cleanup
		qmgr       unix n - n 300 1 qmgr
		tlsmgr     unix - - n 1000? 1 tlsmgr
		rewrite    unix - - n - - trivial-rewrite
		bounce     unix - - n - 0 bounce
		defer      unix - - n - 0 bounce
		trace      unix - - n - 0 bounce
		verify     unix - - n - 1 verify
		flush      unix n - n 1000? 0 flush
		proxymap   unix - - n - - proxymap
		proxywrite unix - - n - 1 proxymap
		smtp       unix - - n - - smtp
		relay      unix - - n - - smtp
		showq      unix n - n - - showq
		error      unix - - n - - error
		retry      unix - - n - - error
		discard    unix - - n - - discard
		anvil      unix - - n - 1 anvil
		scache     unix - - n - 1 scache
		postlog    unix-dgram n - n - 1 postlogd
	EOF
	# Without a terminal, postfix(1) reports its errors only to syslog (or the
	# maillog once postlogd runs): show both on failure.
	if ! "$postfix_bin" -c "$d/etc" check >"$tmp/postfix-check.log" 2>&1; then
		skip[b]="postfix check failed (BENCH_KEEP=1 keeps $d)"
		cat "$tmp/postfix-check.log" "$d/maillog" >&2 2>/dev/null || true
		return
	fi
	postfix_dir=$d
	if ! "$postfix_bin" -c "$d/etc" start >"$tmp/postfix-start.log" 2>&1; then
		skip[b]="postfix start failed (BENCH_KEEP=1 keeps $d)"
		cat "$tmp/postfix-start.log" "$d/maillog" >&2 2>/dev/null || true
		return
	fi
	if ! wait_port "$p" "" Postfix "$d/maillog"; then
		skip[b]="Postfix did not listen on 127.0.0.1:$p"
		return
	fi
	port[b]=$p
	say "Postfix $("$postconf_bin" -h -d mail_version) relay on 127.0.0.1:$p (config $d/etc)"
}

# queue_empty is true when the private Postfix has nothing left to deliver.
queue_empty() {
	local q=$postfix_dir/spool
	[ -z "$(find "$q/maildrop" "$q/incoming" "$q/active" "$q/deferred" "$q/hold" -type f -print -quit 2>/dev/null)" ]
}

# wait_drained waits up to 120 s for Postfix's queue to empty and prints the
# time it was found empty.
wait_drained() {
	for _ in $(seq 1200); do
		if queue_empty; then
			now
			return 0
		fi
		sleep 0.1
	done
	say "Postfix queue not empty after 120 s"
	now
	return 1
}

# ---- c, g: passrelay ------------------------------------------------------------
# c is the bare relay of issues 4 and 8: one downstream connection per
# message ("downstream connection reuse makes [d >= c] possible"). g keeps
# 32 idle downstream connections, as tokenproxy does, without its RSET-free
# reuse: the same relay with the same advantage as d.
# start_passrelay TARGET POOL
start_passrelay() {
	local p
	free_port p
	"$tmp/bin/passrelay" -listen "127.0.0.1:$p" -downstream "127.0.0.1:$sink_port" -pool "$2" \
		>"$tmp/passrelay-$1.log" 2>&1 &
	pids+=("$!")
	if wait_port "$p" "$!" passrelay "$tmp/passrelay-$1.log"; then
		port[$1]=$p
	else
		skip[$1]="passrelay did not start"
	fi
}

# ---- d, e: tokenproxy inbound and outbound ----------------------------------------
# One proxy serve for both. With e, the outbound route requires AUTH (user
# crm, no client_networks), and the tokens are made before serve starts (the
# CLI needs the map to itself).
proxy_started=
start_proxy() {
	[ -z "$proxy_started" ] || return 0
	proxy_started=1
	if [ -n "$proxy_skip" ]; then
		skip[d]=$proxy_skip skip[e]=$proxy_skip
		return
	fi
	local p p2 p3 cfg=$tmp/proxy.yaml hash access="client_networks: [127.0.0.0/8]"
	free_port p
	free_port p2
	free_port p3
	mkdir -p "$tmp/data"
	if [[ " $targets " == *" e "* ]]; then
		if ! hash=$("$tmp/bin/proxy" hash-password <"$tmp/auth-password" 2>"$tmp/proxy-hash.log"); then
			skip[d]="proxy hash-password failed: $(tail -1 "$tmp/proxy-hash.log")" skip[e]=${skip[d]}
			return
		fi
		# Two lines of the outbound block (the second indented as the first).
		access="auth_users: [{name: $auth_user, password_hash: '$hash'}]"$'\n'"  client_networks: []"
	fi
	cat >"$cfg" <<-EOF
		data_dir: $tmp/data
		relay_domain: relay.company.example
		internal_domains: [company.example, crm.example]
		mailboxes:
		  - {public: support@company.example, crm: support@crm.example}
		keys: {provider: local}
		log: {level: warn, format: json}
		inbound:
		  listen: 127.0.0.1:$p
		  hostname: mx.company.example
		  auth_check: {enabled: $auth_check}
		  downstream: {address: "127.0.0.1:$sink_port", tls: insecure}
		outbound:
		  listen: 127.0.0.1:$p2
		  hostname: relay.company.example
		  $access
		  downstream: {address: "127.0.0.1:$sink_port", tls: insecure}
		admin: {listen: "127.0.0.1:$p3"}
		audit: {sync: $audit_sync}
		smtp: {max_connections: 1000, max_connections_per_ip: 1000, downstream_pool_size: 32}
	EOF
	if ! "$tmp/bin/proxy" --config "$cfg" check-config >"$tmp/proxy-check.log" 2>&1; then
		skip[d]="proxy check-config rejects the benchmark config: $(tail -1 "$tmp/proxy-check.log")" skip[e]=${skip[d]}
		return
	fi
	if [[ " $targets " == *" e "* ]] && ! make_tokens "$cfg"; then
		skip[e]="proxy token new failed: $(tail -1 "$tmp/proxy-token.log")"
	fi
	"$tmp/bin/proxy" --config "$cfg" serve >"$tmp/proxy.log" 2>&1 &
	pids+=("$!")
	if wait_port "$p" "$!" "proxy serve" "$tmp/proxy.log" && wait_port "$p2" "$!" "proxy serve" "$tmp/proxy.log"; then
		port[d]=$p
		# serve made its self-signed certificate at start: e verifies it.
		if [ -z "${skip[e]:-}" ]; then port[e]=$p2 ca[e]=$tmp/data/tls/selfsigned.crt; fi
	else
		skip[d]="proxy serve did not start (its log is above)" skip[e]=${skip[d]}
	fi
}

# make_tokens CONFIG: the tokens of n_tokens customer addresses, one a line,
# in $tmp/tokens.txt.
make_tokens() {
	local i
	: >"$tmp/tokens.txt"
	for i in $(seq "$n_tokens"); do
		"$tmp/bin/proxy" --config "$1" token new --name "Customer $i" "customer$i@example.net" \
			>>"$tmp/tokens.txt" 2>"$tmp/proxy-token.log" || return 1
	done
	say "$n_tokens tokens made (proxy token new), e.g. $(head -1 "$tmp/tokens.txt")"
}

# ---- f: tlsrelay -------------------------------------------------------------------
start_tlsrelay() {
	local p i
	free_port p
	# Without e there are no real tokens; tlsrelay resolves nothing, so
	# token-shaped addresses do (make_tokens replaces them when e runs).
	if [ ! -s "$tmp/tokens.txt" ]; then
		for i in $(seq "$n_tokens"); do printf 't1-bench%08d@relay.company.example\n' "$i"; done >"$tmp/tokens.txt"
	fi
	"$tmp/bin/passrelay" -listen "127.0.0.1:$p" -downstream "127.0.0.1:$sink_port" -pool 32 \
		-user "$auth_user" -password-file "$tmp/auth-password" -cert-out "$tmp/tlsrelay.crt" \
		>"$tmp/tlsrelay.log" 2>&1 &
	pids+=("$!")
	if wait_port "$p" "$!" tlsrelay "$tmp/tlsrelay.log"; then
		port[f]=$p ca[f]=$tmp/tlsrelay.crt
	else
		skip[f]="tlsrelay did not start"
	fi
}

for t in $targets; do
	case $t in
	a) ;;
	b) start_postfix ;;
	c) start_passrelay c 0 ;;
	g) start_passrelay g 32 ;;
	d | e) start_proxy ;;
	f) start_tlsrelay ;;
	*) die "unknown target '$t' (want a, b, c, d, e, f or g)" ;;
	esac
done

# ---- runs ------------------------------------------------------------------------
# source_run TARGET SESSIONS KB COUNT: runs smtp-source and prints its seconds.
source_run() {
	local t=$1 s=$2 kb=$3 n=$4 t0 t1
	t0=$(now)
	if ! timeout 120 "$source_bin" -d -s "$s" -m "$n" -M client.example.net -f "$from" -t "$to" \
		-F "$tmp/msg-${kb}k.eml" "127.0.0.1:${port[$t]}" >"$tmp/source.log" 2>&1; then
		say "smtp-source against $t ($s sessions, ${kb} KB) failed: $(tail -2 "$tmp/source.log" | tr '\n' ' ')"
		return 1
	fi
	t1=$(now)
	calc "$t1 - $t0"
}

# calibrate TARGET SESSIONS KB: warm-up runs (processes, pools, the token
# cache), growing until one takes 0.5 s, then prints the count that takes
# about run_seconds. Short runs overstate the connection set-up, so the
# estimate comes from the last, longest one.
calibrate() {
	local t=$1 s=$2 kb=$3 n sec
	n=$((s * 5 > 50 ? s * 5 : 50))
	while :; do
		sec=$(source_run "$t" "$s" "$kb" "$n") || return 1
		if [ "$t" = b ]; then wait_drained >/dev/null || true; fi
		if awk -v sec="$sec" -v n="$n" 'BEGIN { exit !(sec >= 0.5 || n >= 50000) }'; then break; fi
		n=$(awk -v sec="$sec" -v n="$n" 'BEGIN { f = 0.6 / (sec > 0.01 ? sec : 0.01); if (f > 10) f = 10; if (f < 2) f = 2; print int(n * f) }')
	done
	awk -v n0="$n" -v sec="$sec" -v want="$run_seconds" -v s="$s" 'BEGIN {
		n = int(n0 / sec * want); if (n < s * 5) n = s * 5; if (n > 200000) n = 200000
		print n }'
}

row() { printf '%-6s %8s %5s %7s %8s %9s  %9s %7s %7s %7s  %s\n' "$@"; }
rows=()
# cpu_busy prints the percentage of CPU time spent by anything over one
# second: other work on the machine lowers every figure.
cpu_busy() {
	local a b
	a=$(head -1 /proc/stat)
	sleep 1
	b=$(head -1 /proc/stat)
	awk -v a="$a" -v b="$b" 'BEGIN {
		na = split(a, x); split(b, y); total = 0
		for (i = 2; i <= na; i++) total += y[i] - x[i]
		idle = (y[5] - x[5]) + (y[6] - x[6])
		printf "%.0f", (total > 0 ? 100 * (total - idle) / total : 0) }'
}
busy_start=$(cpu_busy)
budget_note=

# tls_load TARGET SESSIONS KB [ARGS...]: smtpload as a CRM connector against
# e or f (STARTTLS verified against the target's certificate, AUTH PLAIN,
# replies to the tokens), printing its -brief line.
tls_load() {
	local t=$1 s=$2 kb=$3
	shift 3
	timeout 300 "$tmp/bin/smtpload" -addr "127.0.0.1:${port[$t]}" -sessions "$s" -size $((kb * 1024)) \
		-tls-ca "${ca[$t]}" -auth-user "$auth_user" -auth-password-file "$tmp/auth-password" \
		-tokens "$tmp/tokens.txt" -from "$crm_from" -brief "$@" 2>&1
}

# tls_row TARGET SESSIONS KB: a warm-up (pooled connections, caches), then
# one run: every session set up first, then BENCH_RUN_SECONDS of messages
# (or BENCH_COUNT messages). Adds the row.
tls_row() {
	local t=$1 s=$2 kb=$3 out per=1000000 max=${run_seconds}s note=
	local lr r errs n sec setup_s setup_p50 setup_p99 tls_p50 auth_p50
	if [ -n "$fixed_count" ]; then per=$(((fixed_count + s - 1) / s)) max=120s; fi
	if ! out=$(tls_load "$t" 2 "$kb" -messages 50); then
		rows+=("$(row "$t" "$s" "${kb}K" - - error - - - - "warm-up: $(printf '%s' "$out" | tr '\n' ' ' | cut -c1-160)")")
		return
	fi
	if ! out=$(tls_load "$t" "$s" "$kb" -connect-first -messages "$per" -max-time "$max"); then
		note="smtpload: $(printf '%s' "$out" | tr '\n' ' ' | cut -c1-160)"
	fi
	read -r lr p50 p90 p99 errs n sec setup_s setup_p50 setup_p99 tls_p50 auth_p50 _ <<<"${out%%$'\n'*}"
	if ! [[ "${n:-}" =~ ^[0-9]+$ ]] || ((n == 0)); then
		rows+=("$(row "$t" "$s" "${kb}K" - - error - - - - "${note:-smtpload printed no result}")")
		return
	fi
	r=$(calc "$n / $sec")
	rate[$t,$s,$kb]=$r lrate[$t,$s,$kb]=$lr
	if ((errs > 0)) && [ -z "$note" ]; then note="$errs failed"; fi
	note+="${note:+; }all sessions set up in ${setup_s} s; each p50/p99 ${setup_p50}/${setup_p99} ms (TLS ${tls_p50}, AUTH ${auth_p50} ms p50)"
	rows+=("$(row "$t" "$s" "${kb}K" "$n" "$sec" "$r" "$lr" "$p50" "$p90" "$p99" "$note")")
	say "done: $t, $s sessions, ${kb} KB: $n messages in $sec s after a ${setup_s} s set-up, $r msg/s"
}

for kb in $sizes; do
	for s in $sessions_list; do
		for t in $targets; do
			[ -n "${port[$t]:-}" ] || continue
			if (($(date +%s) - started > max_seconds)); then
				budget_note="time budget of ${max_seconds} s spent: later runs skipped (BENCH_MAX_SECONDS)"
				rows+=("$(row "$t" "$s" "${kb}K" - - - - - - - skipped)")
				continue
			fi
			if [ "$t" = e ] || [ "$t" = f ]; then
				tls_row "$t" "$s" "$kb"
				continue
			fi
			note=
			n=$fixed_count
			if [ -z "$n" ]; then n=$(calibrate "$t" "$s" "$kb") || n=; fi
			if [ -z "$n" ] || ! sec=$(source_run "$t" "$s" "$kb" "$n"); then
				rows+=("$(row "$t" "$s" "${kb}K" "${n:--}" - error - - - - "smtp-source failed, see above")")
				continue
			fi
			# A run much shorter than wanted (the calibration met a busy moment)
			# is repeated once with the count scaled up.
			if [ -z "$fixed_count" ] && awk -v sec="$sec" -v want="$run_seconds" -v n="$n" \
				'BEGIN { exit !(sec < want * 0.4 && n < 200000) }'; then
				if [ "$t" = b ]; then wait_drained >/dev/null || true; fi
				n2=$(awk -v n="$n" -v sec="$sec" -v want="$run_seconds" 'BEGIN { n = int(n / (sec > 0.01 ? sec : 0.01) * want); print (n > 200000 ? 200000 : n) }')
				if sec2=$(source_run "$t" "$s" "$kb" "$n2"); then n=$n2 sec=$sec2; fi
			fi
			ended=$(now)
			r=$(calc "$n / $sec")
			rate[$t,$s,$kb]=$r
			if [ "$t" = b ]; then
				# From the start of the run until the last message left the queue.
				drained=$(wait_drained) || note="queue did not drain; "
				note+="delivered $(calc "$n / ($sec + $drained - $ended)") msg/s"
			fi
			lr=- p50=- p90=- p99=-
			if [ "$latency" = 1 ]; then
				per=$(((n / 2 + s - 1) / s))
				((per >= 2)) || per=2
				if out=$(timeout 120 "$tmp/bin/smtpload" -addr "127.0.0.1:${port[$t]}" -sessions "$s" -messages "$per" \
					-size $((kb * 1024)) -from "$from" -to "$to" -max-time 60s -brief 2>&1); then
					read -r lr p50 p90 p99 _ <<<"$out"
					lrate[$t,$s,$kb]=$lr
				else
					note+="${note:+; }smtpload: $(printf '%s' "$out" | tr '\n' ' ' | cut -c1-160)"
				fi
				if [ "$t" = b ]; then wait_drained >/dev/null || true; fi
			fi
			rows+=("$(row "$t" "$s" "${kb}K" "$n" "$sec" "$r" "$lr" "$p50" "$p90" "$p99" "$note")")
			say "done: $t, $s sessions, ${kb} KB: $n messages in $sec s, $r msg/s"
		done
	done
done

# ---- report ----------------------------------------------------------------------
echo
echo "# SMTP relay benchmark $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, CPU busy before the runs: ${busy_start}%, after: $(cpu_busy)%"
echo "# a = smtp-source -> smtp-sink; b = via a Postfix relay; c = via test/passrelay (go-smtp, a downstream connection per message);"
echo "# g = via test/passrelay -pool 32 (c with pooled downstream connections); d = via tokenproxy inbound"
echo "# e = via tokenproxy outbound (STARTTLS + AUTH PLAIN, argon2id; audit.sync: $audit_sync); f = via test/passrelay -user -pool 32 (g + the same STARTTLS and AUTH)"
echo "# msg/s: a-d: smtp-source -d with the same message file (-F, 3 external addresses) for every target;"
echo "#        e, f: smtpload (smtp-source has no TLS), sessions set up first, then CRM replies naming 3 tokens, ${n_tokens} tokens"
echo "# lat msg/s, p50/p90/p99: test/smtpload, DATA sent -> 250 after the dot, in ms (e, f: the same run as msg/s)"
echo
row target sessions size count seconds "msg/s" "lat msg/s" p50 p90 p99 note
for r in "${rows[@]}"; do echo "$r"; done
echo
for t in $targets; do
	if [ -n "${skip[$t]:-}" ]; then echo "skipped $t: ${skip[$t]}"; fi
done
if [ -n "$budget_note" ]; then echo "$budget_note"; fi

quotient() { if [ -n "$1" ] && [ -n "$2" ]; then calc "$1 / $2"; else echo n/a; fi; }
# ratio NUM DEN at 20 sessions and 5 KB, of msg/s; lratio: DEN's smtpload msg/s.
ratio() { quotient "${rate[$1,20,5]:-}" "${rate[$2,20,5]:-}"; }
lratio() { quotient "${rate[$1,20,5]:-}" "${lrate[$2,20,5]:-}"; }
if [[ " $targets " == *" d "* ]]; then
	echo "ratios at 20 sessions, 5 KB (smtp-source msg/s): d/a $(ratio d a)  d/b $(ratio d b)  d/c $(ratio d c)  d/g $(ratio d g)" \
		"  (for reference: b/a $(ratio b a)  c/a $(ratio c a))"
fi
if [[ " $targets " == *" e "* ]]; then
	echo "outbound at 20 sessions, 5 KB (smtpload msg/s on both sides): e/f $(ratio e f)  e/g $(lratio e g)" \
		"  (g and d have no TLS and no AUTH: for reference f/g $(lratio f g)  e/d $(lratio e d))"
fi
if ((busy_start > 10)); then
	echo "warning: the machine was not idle before the runs (CPU ${busy_start}% busy): figures are low"
fi
