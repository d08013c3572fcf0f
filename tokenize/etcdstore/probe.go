package etcdstore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"
)

// probeTimeout bounds the diagnosis of a failed Open per endpoint.
const probeTimeout = 2 * time.Second

// diagnose explains a failed first call to the cluster. The gRPC client
// retries a refused TLS handshake until its deadline and reports only
// "context deadline exceeded"; an operator needs the cause (no client
// certificate, a certificate from another CA, a member certificate this
// node does not trust). So it completes one TLS handshake per endpoint,
// as the client would, and adds the first TLS failure to err. It never
// sends anything: the handshake is all it does.
func diagnose(ctx context.Context, o Options, err error) error {
	if o.TLS == nil || !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	for _, ep := range o.Endpoints {
		if cause := probeTLS(ctx, o.TLS, ep); cause != nil {
			return fmt.Errorf("%w (TLS with %s: %w)", err, ep, cause)
		}
	}
	return err
}

// probeTLS completes a TLS handshake with one endpoint. A member that
// refuses the client certificate says so only after the handshake (TLS
// 1.3 sends the alert with its first record), hence the short read.
func probeTLS(ctx context.Context, base *tls.Config, endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme != "https" {
		return nil
	}
	cfg := base.Clone()
	if cfg.ServerName == "" {
		cfg.ServerName = u.Hostname()
	}
	cfg.NextProtos = []string{"h2"} // etcd's gRPC listener
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	d := tls.Dialer{NetDialer: &net.Dialer{}, Config: cfg}
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil // unreachable, not a TLS matter
		}
		return err
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := conn.Read(make([]byte, 1)); err != nil {
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			return err
		}
	}
	return nil
}
