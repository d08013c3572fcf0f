#!/usr/bin/env bash
# Builds a minimal Debian root file system with tokenproxy installed and the
# firewall and sysctl files in place, as a tarball for systemd-nspawn,
# `machinectl import-tar`, or as the base of a VM image.
#
#   make deb
#   sudo deploy/image/build-rootfs.sh dist/tokenproxy_*.deb dist/tokenproxy-rootfs.tar.gz
#
# Needs root and debootstrap (apt-get install debootstrap); downloads about
# 60 MB of Debian packages (SUITE, default bookworm; MIRROR, default
# deb.debian.org). No service starts during the build. In the image:
# systemd, nftables (enabled, with deploy/firewall/tokenproxy.nft included:
# fill in its sets before the first boot on a network), the sysctl file,
# persistent journal, tokenproxy installed but not enabled (its
# configuration needs the steps of deploy/README.md §1 first). The root
# account is locked; add your SSH key or user before use.
set -euo pipefail

deb=${1:?usage: build-rootfs.sh TOKENPROXY.deb OUT.tar.gz}
out=${2:?usage: build-rootfs.sh TOKENPROXY.deb OUT.tar.gz}
suite=${SUITE:-bookworm}
mirror=${MIRROR:-http://deb.debian.org/debian}
here=$(cd "$(dirname "$0")/.." && pwd) # deploy/

[ "$(id -u)" -eq 0 ] || { echo "build-rootfs.sh: needs root (debootstrap, chroot)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "build-rootfs.sh: install debootstrap first" >&2; exit 1; }
[ -f "$deb" ] || { echo "build-rootfs.sh: $deb not found (make deb)" >&2; exit 1; }

root=$(mktemp -d /var/tmp/tokenproxy-rootfs.XXXXXX)
chmod 0755 "$root" # the image's "/": mktemp made it 0700, which locks out every non-root service
cleanup() {
	# Unmount whatever debootstrap left mounted before deleting anything.
	local m
	for m in $(awk -v r="$root" 'index($2, r) == 1 { print $2 }' /proc/self/mounts | sort -r); do
		umount -l "$m" || true
	done
	rm -rf --one-file-system "$root"
}
trap cleanup EXIT

# procps is the package's dependency (dpkg -i below does not fetch any).
debootstrap --variant=minbase \
	--include=systemd,systemd-sysv,systemd-timesyncd,dbus,nftables,ca-certificates,adduser,procps,iproute2,curl \
	"$suite" "$root" "$mirror"

printf '#!/bin/sh\n# no service starts while the image is built\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
cp "$deb" "$root/tmp/tokenproxy.deb"
chroot "$root" env DEBIAN_FRONTEND=noninteractive dpkg -i /tmp/tokenproxy.deb
rm -f "$root/tmp/tokenproxy.deb" "$root/usr/sbin/policy-rc.d"

install -D -m 0644 "$here/firewall/tokenproxy.nft" "$root/etc/nftables.d/tokenproxy.nft"
echo 'include "/etc/nftables.d/tokenproxy.nft"' >>"$root/etc/nftables.conf"
install -m 0644 "$here/firewall/99-tokenproxy-sysctl.conf" "$root/etc/sysctl.d/99-tokenproxy.conf"
chroot "$root" systemctl enable nftables.service systemd-timesyncd.service
mkdir -p "$root/var/log/journal"

# A fresh machine-id at first boot; no package lists or caches.
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/debconf/*-old "$root"/var/log/*.log

mkdir -p "$(dirname "$out")"
tar --numeric-owner --xattrs -C "$root" -czf "$out" .
echo "build-rootfs.sh: wrote $out ($(du -h "$out" | cut -f1))"
