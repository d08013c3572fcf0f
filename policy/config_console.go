package policy

import "time"

// Console configures the compliance console: web pages on the admin
// listener at /console/, for the same principals as the API, served when
// compliance is enabled.
type Console struct {
	Enabled bool `yaml:"enabled"`
	// IdleTimeout ends a console session unused for this long; the
	// officer signs in again (the bearer token or the client certificate).
	IdleTimeout time.Duration `yaml:"idle_timeout"`
}

// Bounds of console.idle_timeout: a session is a short-lived convenience,
// not a way around the credentials.
const (
	MinConsoleIdle = 5 * time.Second
	MaxConsoleIdle = 8 * time.Hour
)

func defaultConsole() Console { return Console{Enabled: true, IdleTimeout: 15 * time.Minute} }

func (c *Config) validateConsole() error {
	if t := c.Compliance.Console.IdleTimeout; t < MinConsoleIdle || t > MaxConsoleIdle {
		return c.fail("compliance.console.idle_timeout", "must be between %s and %s, got %s", MinConsoleIdle, MaxConsoleIdle, t)
	}
	return nil
}
