package tools

import (
	"os/exec"
	"strings"
	"testing"
)

// TestAptFindMissing runs apt.sh's apt_find_missing, the check every
// install script shares, in bash: an installed package (bash itself) is not
// missing, an unknown one is, and a list with nothing missing says
// "already installed" and returns 1 so that the script stops there.
func TestAptFindMissing(t *testing.T) {
	tests := []struct {
		name     string
		packages string
		want     string
	}{
		{"none missing", "bash coreutils", "rc=1 missing=[] said=already installed: bash coreutils"},
		{"one missing", "bash tokenproxy-no-such-package", "rc=0 missing=[tokenproxy-no-such-package] said="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			script := `set -euo pipefail
said=
say() { said="$*"; }
die() { echo "die: $*" >&2; exit 2; }
. ./apt.sh
rc=0
apt_find_missing ` + tt.packages + ` || rc=$?
echo "rc=$rc missing=[${apt_missing[*]}] said=$said"`
			out, err := exec.Command("bash", "-c", script).CombinedOutput()
			if err != nil {
				t.Fatalf("bash: %v\n%s", err, out)
			}
			if got := strings.TrimSpace(string(out)); got != tt.want {
				t.Errorf("apt_find_missing %s:\n got %q\nwant %q", tt.packages, got, tt.want)
			}
		})
	}
}
