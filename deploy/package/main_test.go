package main

import (
	"reflect"
	"testing"
)

func TestStrictMapping(t *testing.T) {
	mapping, unknown := strictMapping(map[string]string{"VERSION": "1.2.3"})
	if got := mapping("VERSION"); got != "1.2.3" {
		t.Errorf("VERSION = %q", got)
	}
	if got := mapping("NFPM_PASSPHRASE"); got != "" {
		t.Errorf("NFPM_PASSPHRASE = %q, want empty", got)
	}
	if got := mapping("HOME"); got != "" {
		t.Errorf("HOME = %q: the environment must not leak into the package", got)
	}
	mapping("PATH")
	if got, want := unknown(), []string{"HOME", "PATH"}; !reflect.DeepEqual(got, want) {
		t.Errorf("unknown() = %v, want %v", got, want)
	}
}

func TestBuildRejectsBadVersion(t *testing.T) {
	if _, err := build(options{version: "v1.0"}, nil); err == nil {
		t.Error("version v1.0 accepted; Debian versions start with a digit")
	}
}
