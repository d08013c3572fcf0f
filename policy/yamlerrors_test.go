package policy_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tokenproxy/tokenproxy/policy"
)

// TestDecodeErrorsNameTheYAMLPath: a field the schema lacks, or a value of
// the wrong type, is reported with its path in the file, never with the
// Go type that holds it.
func TestDecodeErrorsNameTheYAMLPath(t *testing.T) {
	tests := []struct {
		name   string
		yaml   string
		fields []string // every error's field, in order
		reason string   // in the first error
	}{
		{"top level", "tokenz: {}", []string{"tokenz"}, "unknown field (line 5)"},
		{"nested block", "inbound:\n  max_msg_size: 3", []string{"inbound.max_msg_size"}, "unknown field (line 6)"},
		{"nested flow", "store: {etcd: {endpoint: x}}", []string{"store.etcd.endpoint"}, "unknown field"},
		{"in a sequence", "outbound:\n  auth_users:\n    - name: crm\n      password: x", []string{"outbound.auth_users[0].password"}, "unknown field (line 8)"},
		{"wrong type", "tokens:\n  length: abc", []string{"tokens.length"}, "cannot unmarshal !!str `abc` into int (line 6)"},
		{"wrong type in a flow mapping", "tokens: {prefix: t, length: abc}", []string{"tokens.length"}, "`abc`"},
		{"several", "inbound:\n  max_msg_size: 3\nadmin:\n  lisen: x", []string{"inbound.max_msg_size", "admin.lisen"}, "unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := policy.Parse([]byte(base+tt.yaml), "test.yaml")
			if !errors.Is(err, policy.ErrConfig) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
			var fields []string
			var first *policy.FieldError
			for _, e := range unjoin(err) {
				var fe *policy.FieldError
				if !errors.As(e, &fe) {
					t.Fatalf("%v is not a *FieldError", e)
				}
				if first == nil {
					first = fe
				}
				fields = append(fields, fe.Field)
			}
			if strings.Join(fields, " ") != strings.Join(tt.fields, " ") || !strings.Contains(first.Reason, tt.reason) {
				t.Errorf("err = %q, want fields %v, first reason containing %q", err, tt.fields, tt.reason)
			}
			if strings.Contains(err.Error(), "policy.") || strings.Contains(err.Error(), "not found in type") {
				t.Errorf("err = %q names a Go type", err)
			}
		})
	}
}

// TestDecodeErrorOutsideAField: a syntax error has no field to name and
// keeps the decoder's words.
func TestDecodeErrorOutsideAField(t *testing.T) {
	_, err := policy.Parse([]byte("inbound: [\n"), "test.yaml")
	var fe *policy.FieldError
	if !errors.As(err, &fe) || fe.Field != "(file)" || !strings.Contains(fe.Reason, "line") {
		t.Fatalf("err = %v, want a (file) error with the line", err)
	}
}

// unjoin splits an errors.Join result.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
