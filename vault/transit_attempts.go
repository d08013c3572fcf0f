package vault

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/vault/api"
)

// A request to Vault is bounded by TransitConfig.Timeout, retries included.
// The api client retries a refused or reset connection after a backoff of
// a second or more; when the timeout ends during that wait, retryablehttp
// returns the context's error alone, and "context deadline exceeded" hides
// what happened. So each request carries an attemptLog that the retry
// policy fills with the last attempt's failure, for transportError to name.

type attemptLog struct {
	start time.Time
	mu    sync.Mutex
	last  error
}

type attemptLogKey struct{}

// requestContext bounds one request (or a short sequence of them, as in
// unwrapSecretID) by the configured timeout and gives it an attempt log.
func (t *Transit) requestContext(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	return context.WithValue(ctx, attemptLogKey{}, &attemptLog{start: time.Now()}), cancel
}

// checkRetry is the api client's default retry policy, noting each failed
// attempt in the request's log. An attempt cut short by the context is
// not noted: it would only repeat the context's error.
func checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if l, ok := ctx.Value(attemptLogKey{}).(*attemptLog); ok && err != nil && ctx.Err() == nil {
		l.mu.Lock()
		l.last = err
		l.mu.Unlock()
	}
	return api.DefaultRetryPolicy(ctx, resp, err)
}

// requestAttempts returns how long ago the request ctx carries started
// (0 without a log), and its last attempt's failure.
func requestAttempts(ctx context.Context) (time.Duration, error) {
	l, ok := ctx.Value(attemptLogKey{}).(*attemptLog)
	if !ok {
		return 0, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return time.Since(l.start), l.last
}
