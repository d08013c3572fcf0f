#!/usr/bin/env bash
# Installs the mail tools the tests and benchmarks use, when missing:
#   swaks                                (Debian package swaks)
#   Net::SSLeay, IO::Socket::SSL        (libnet-ssleay-perl, libio-socket-ssl-perl: swaks --tls)
#   smtp-sink, smtp-source, postfix ...  (Debian package postfix, in /usr/sbin)
#   promtool                             (Debian package prometheus: the alert
#                                         rules' checks, test/monitoring)
#   /usr/bin/time                        (Debian package time: peak RSS, test/bench-memory.sh)
#
# Idempotent: prints "already installed" and changes nothing when all are
# there. Postfix is installed as a set of programs only: debconf is preseeded
# with "No configuration" (no main.cf, nothing listening), and apt.sh
# refuses service starts during the install, so the machine does not become
# a mail server; likewise prometheus is installed for its promtool only:
# its service is not started, and is disabled after the install. A package
# that would have to be removed to make room for postfix (another MTA,
# e.g. exim4) makes the script stop instead;
# TOKENPROXY_ALLOW_REMOVE=1 lets apt replace it.
#
# Needs root, or sudo. Called by test/tools (Go) under a lock, and by
# test/bench-smtp.sh; safe to run by hand.
set -euo pipefail

packages=(swaks postfix libnet-ssleay-perl libio-socket-ssl-perl prometheus time)

say() { printf 'install.sh: %s\n' "$*"; }
die() { printf 'install.sh: error: %s\n' "$*" >&2; exit 1; }
. "$(dirname "$0")/apt.sh"

apt_find_missing "${packages[@]}" || exit 0
apt_root "${apt_missing[@]}"
if [[ " ${apt_missing[*]} " == *" postfix "* ]]; then
	echo 'postfix postfix/main_mailer_type select No configuration' | as_root debconf-set-selections
	say "debconf preseeded: postfix/main_mailer_type = No configuration"
fi
apt_install "${apt_missing[@]}"
if [[ " ${apt_missing[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null; then
	# Best effort: without systemd running (a container), there is nothing to disable.
	as_root systemctl disable prometheus >/dev/null 2>&1 || true
fi
apt_check_installed "${apt_missing[@]}"
say "installed: ${apt_missing[*]} ($(command -v swaks || echo 'swaks ?'), /usr/sbin/smtp-sink, /usr/sbin/smtp-source)"
