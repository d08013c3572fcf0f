// Package deploy holds the tests of the deployment files in deploy/: the
// systemd units (systemd-analyze security and verify, and the system call
// filter against the real binary under strace), the Debian package (built
// with `make deb`, its file list, modes and owners, and its maintainer
// scripts run in a throwaway root), the nftables ruleset and sysctl file,
// the production example configuration (check-config), and the packaging
// module's own tests (Vault Agent and policy HCL).
//
// The tools they drive (systemd-analyze, nft, make, dpkg-deb, strace) are
// installed by deploy/test-tools.sh when missing; a test fails, never
// skips, when one cannot be had. The maintainer-script test needs root
// (chroot and a private mount namespace), as the tool installs do.
package deploy
