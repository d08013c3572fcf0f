//go:build !windows && !plan9

package audit

import (
	"fmt"
	"log/syslog"
)

// syslogForwarder sends each line as one syslog message.
type syslogForwarder struct{ w *syslog.Writer }

// NewSyslog connects to a syslog server (network "" for the local
// daemon, or "udp"/"tcp" and host:port) and returns a Forwarder that sends
// each audit line as one message, facility auth, severity notice: auth
// because the trail records access to personal data, and notice so default
// syslog rules keep it.
func NewSyslog(network, addr, tag string) (Forwarder, error) {
	w, err := syslog.Dial(network, addr, syslog.LOG_NOTICE|syslog.LOG_AUTH, tag)
	if err != nil {
		return nil, fmt.Errorf("audit: syslog: %w", err)
	}
	return syslogForwarder{w: w}, nil
}

func (s syslogForwarder) Forward(line []byte) error {
	_, err := s.w.Write(line)
	return err
}

// Close closes the connection; the Log calls it when it closes.
func (s syslogForwarder) Close() error { return s.w.Close() }
