package compliance

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/tokenproxy/tokenproxy/internal/safeio"
)

// Client calls a running proxy's compliance API (`proxy compliance`). It
// trusts only the configured CA and speaks TLS 1.2 or later.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// ClientOptions say how to reach the API.
type ClientOptions struct {
	Server            string // base URL: https://host:port
	CAFile            string // PEM CA that signs the admin certificate
	CertFile, KeyFile string // client certificate (PEM), optional
	Token             string // bearer token, optional
	TokenFile         string // when set, the bearer token is read from it instead
	Timeout           time.Duration
}

// NewClient returns a client; it reads the CA, the client certificate and
// the token file now, so a bad file fails before any request.
func NewClient(o ClientOptions) (*Client, error) {
	tc, err := clientTLS(o)
	if err != nil {
		return nil, err
	}
	token := o.Token
	if o.TokenFile != "" {
		b, err := os.ReadFile(o.TokenFile)
		if err != nil {
			return nil, err
		}
		token = strings.TrimSpace(string(b))
	}
	return &Client{base: strings.TrimSuffix(o.Server, "/"), token: token,
		http: &http.Client{Timeout: o.Timeout, Transport: &http.Transport{TLSClientConfig: tc}}}, nil
}

func clientTLS(o ClientOptions) (*tls.Config, error) {
	pem, err := os.ReadFile(o.CAFile)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w (set --ca-file)", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s holds no PEM certificate", o.CAFile)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	if o.CertFile != "" || o.KeyFile != "" {
		pair, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
}

// Do sends a request (body, when not nil, as JSON) and returns the body
// of a 2xx reply, or an error carrying the server's message.
func (c *Client) Do(ctx context.Context, method, path string, body any) (io.ReadCloser, error) {
	rc, _, err := c.DoHeader(ctx, method, path, body)
	return rc, err
}

// DoHeader is Do that also returns the reply's header.
func (c *Client) DoHeader(ctx context.Context, method, path string, body any) (io.ReadCloser, http.Header, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode/100 == 2 {
		return resp.Body, resp.Header, nil
	}
	defer resp.Body.Close()
	var e struct{ Error string }
	json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&e)
	return nil, nil, fmt.Errorf("%s: %s", resp.Status, e.Error)
}

// Backup saves an online backup of the token map to path and returns its
// size. check says whether a file is a whole backup of the server's store
// backend (boltstore.CheckFile): a cut stream is not kept.
func (c *Client) Backup(ctx context.Context, path string, check func(path string) error) (int64, error) {
	rc, err := c.Do(ctx, http.MethodGet, "/v1/backup", nil)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	return saveBackup(rc, path, check)
}

// saveBackup writes the stream to a temporary file, checks that it is a
// whole, consistent backup (a cut stream is not), and renames it
// (internal/safeio).
func saveBackup(r io.Reader, path string, check func(string) error) (int64, error) {
	var n int64
	err := safeio.WriteFileFunc(path, 0o600, func(f *os.File) error {
		var err error
		if n, err = io.Copy(f, r); err != nil {
			return err
		}
		return check(f.Name())
	})
	if err != nil {
		return 0, fmt.Errorf("backup incomplete, nothing kept: %w", err)
	}
	return n, nil
}
