package policy_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/policy"
)

func TestConsoleIdleTimeout(t *testing.T) {
	for _, tt := range []struct {
		extra string
		want  time.Duration
		err   string
	}{
		{"", 15 * time.Minute, ""},
		{"compliance: {console: {idle_timeout: 5s}}", 5 * time.Second, ""},
		{"compliance: {console: {idle_timeout: 8h}}", 8 * time.Hour, ""},
		{"compliance: {console: {idle_timeout: 1s}}", 0, "between 5s and 8h0m0s"},
		{"compliance: {console: {idle_timeout: 9h}}", 0, "between 5s and 8h0m0s"},
		{"compliance: {console: {idle_timout: 1m}}", 0, "idle_timout"},
	} {
		t.Run(tt.extra, func(t *testing.T) {
			c, err := policy.Parse([]byte(base+tt.extra), "test.yaml")
			if tt.err == "" {
				if err != nil || c.Compliance.Console.IdleTimeout != tt.want || !c.Compliance.Console.Enabled {
					t.Fatalf("= %+v, %v; want idle %s, enabled", c.Compliance.Console, err, tt.want)
				}
				return
			}
			if !errors.Is(err, policy.ErrConfig) || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("err = %v, want one naming %q", err, tt.err)
			}
			var fe *policy.FieldError
			if errors.As(err, &fe) && fe.Field != "compliance.console.idle_timeout" && fe.Field != "compliance.console."+tt.err {
				t.Errorf("field = %s", fe.Field)
			}
		})
	}
}
