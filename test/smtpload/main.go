// Command smtpload is the latency-measuring SMTP load client of
// test/bench-smtp.sh. smtp-source gives throughput only; smtpload gives
// per-message latency too, and speaks STARTTLS and AUTH, which the outbound
// route requires and smtp-source does not do.
//
// N sessions each send M messages over one connection (MAIL, RCPT, DATA,
// no RSET in between, as RFC 5321 §4.1.1.4 allows after a completed
// transaction) and it prints one JSON object: throughput and the p50/p90/p99
// latency of the DATA-to-250 step (DATA command sent → 250 after the final
// dot), and of the whole transaction (MAIL → 250); per connection, the
// set-up time (dial → ready for MAIL) and its TLS and AUTH steps.
//
// The message is generated: headers and a text body that name three
// external addresses (the envelope sender and two more), padded to -size
// bytes. -write-message writes it to a file instead (LF line ends, the form
// smtp-source -F wants), so smtp-source can send the very same message.
// With -tokens the messages are CRM replies to token addresses instead, for
// the outbound route.
//
// With -starttls each connection runs STARTTLS after EHLO (any certificate
// accepted, or verified with -tls-ca) and, with -auth-user, AUTH PLAIN; like
// a CRM's connector it does so once per connection, not per message.
// -connect-first sets every session up before the clock starts, so msg/s
// is the steady state and the set-up (an argon2id check per AUTH) is
// reported apart; -max-time then bounds the message phase.
//
//	smtpload -addr 127.0.0.1:2525 -sessions 20 -messages 100 -size 5120
//	smtpload -size 5120 -write-message /tmp/msg.eml
//	smtpload -addr 127.0.0.1:2587 -tls-ca selfsigned.crt -auth-user crm -auth-password-file pw \
//		-tokens tokens.txt -from support@crm.example -connect-first -messages 1000000 -max-time 3s
package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"time"
)

// The three external addresses every generated message carries. The sender
// is also the default envelope sender.
const (
	customer = "customer@example.net"
	other1   = "ann.other@example.org"
	other2   = "bob.smith@example.com"
)

type config struct {
	addr     string
	sessions int
	messages int
	size     int
	from, to string
	helo     string
	timeout  time.Duration
	maxTime  time.Duration
	// connectFirst: every session is set up before the clock starts.
	connectFirst bool
	// tls, when set, makes each connection run STARTTLS with it.
	tls *tls.Config
	// user and password, when user is set: AUTH PLAIN after STARTTLS.
	user, password string
}

// result is what smtpload prints.
type result struct {
	Addr          string  `json:"addr"`
	Sessions      int     `json:"sessions"`
	MessageBytes  int     `json:"message_bytes"`
	Sent          int     `json:"sent"`
	Errors        int     `json:"errors"`
	FirstError    string  `json:"first_error,omitempty"`
	Seconds       float64 `json:"seconds"` // with -connect-first: after the set-up
	MsgPerSec     float64 `json:"msg_per_s"`
	DataLatencyMs latency `json:"data_latency_ms"` // DATA sent → 250 after the dot
	TxnLatencyMs  latency `json:"txn_latency_ms"`  // MAIL sent → 250 after the dot
	// Per connection: dial → ready for MAIL (greeting, EHLO, and with TLS
	// and AUTH those steps too), and the TLS and AUTH steps alone.
	SetupSeconds float64 `json:"setup_seconds,omitempty"` // -connect-first: until the last session was ready
	Connections  int     `json:"connections"`
	SetupMs      latency `json:"setup_ms"`
	TLSMs        latency `json:"tls_ms,omitzero"`  // TLS handshake and EHLO over TLS
	AuthMs       latency `json:"auth_ms,omitzero"` // AUTH PLAIN → 235
	TLS          string  `json:"tls,omitempty"`    // version, cipher suite, key exchange
	Stopped      string  `json:"stopped,omitempty"`
}

type latency struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func main() {
	var cfg config
	var writeTo, tokensFile, caFile, serverName, passwordFile string
	var starttls bool
	flag.StringVar(&cfg.addr, "addr", "", "host:port of the SMTP server under test")
	flag.IntVar(&cfg.sessions, "sessions", 20, "parallel sessions (connections)")
	flag.IntVar(&cfg.messages, "messages", 100, "messages per session")
	flag.IntVar(&cfg.size, "size", 5*1024, "message size in bytes (headers included)")
	flag.StringVar(&cfg.from, "from", customer, "envelope sender")
	flag.StringVar(&cfg.to, "to", "support@company.example", "envelope recipient")
	flag.StringVar(&cfg.helo, "helo", "smtpload.example.net", "EHLO name")
	flag.DurationVar(&cfg.timeout, "timeout", time.Minute, "per-command timeout")
	flag.DurationVar(&cfg.maxTime, "max-time", 5*time.Minute,
		"stop starting new messages after this long (with -connect-first: after the set-up)")
	flag.BoolVar(&cfg.connectFirst, "connect-first", false,
		"set up every session (connect, EHLO, STARTTLS, AUTH) before the clock starts; msg/s then counts the messages only")
	flag.StringVar(&tokensFile, "tokens", "",
		"`file` of token addresses, one a line: send CRM replies instead (the outbound route), each to the next token "+
			"with the two after it in Cc; -to is ignored, -from should be a CRM mailbox")
	flag.BoolVar(&starttls, "starttls", false, "STARTTLS after EHLO, accepting any certificate unless -tls-ca")
	flag.StringVar(&caFile, "tls-ca", "", "verify the server's certificate against this PEM `file` (implies -starttls)")
	flag.StringVar(&serverName, "tls-server-name", "", "name to verify the certificate for (default: the host of -addr)")
	flag.StringVar(&cfg.user, "auth-user", "", "AUTH PLAIN as this user after STARTTLS (needs -auth-password-file)")
	flag.StringVar(&passwordFile, "auth-password-file", "", "`file` whose first line is the AUTH password")
	flag.StringVar(&writeTo, "write-message", "", "write the (first) generated message to this file and exit")
	brief := flag.Bool("brief", false, "print one line instead of JSON: msg/s, DATA-to-250 p50 p90 p99 (ms), errors, "+
		"sent, seconds, set-up seconds, set-up p50 p99 (ms), TLS p50 (ms), AUTH p50 (ms)")
	flag.Parse()
	if flag.NArg() > 0 || cfg.size < 0 || cfg.sessions < 1 || cfg.messages < 0 {
		flag.Usage()
		os.Exit(2)
	}
	msgs, err := payloads(cfg, tokensFile)
	if err != nil {
		fatal(err)
	}
	if writeTo != "" {
		if err := os.WriteFile(writeTo, msgs[0].body, 0o644); err != nil {
			fatal(err)
		}
		return
	}
	if cfg.addr == "" {
		usage("-addr is required")
	}
	if starttls || caFile != "" {
		if cfg.tls, err = tlsConfig(cfg.addr, caFile, serverName); err != nil {
			fatal(err)
		}
	}
	if cfg.user != "" {
		if cfg.tls == nil || passwordFile == "" {
			usage("-auth-user needs -starttls (or -tls-ca) and -auth-password-file")
		}
		if cfg.password, err = readPassword(passwordFile); err != nil {
			fatal(err)
		}
	}
	res := run(cfg, msgs)
	if *brief {
		fmt.Printf("%.0f %.2f %.2f %.2f %d %d %.3f %.3f %.2f %.2f %.2f %.2f\n",
			res.MsgPerSec, res.DataLatencyMs.P50, res.DataLatencyMs.P90, res.DataLatencyMs.P99, res.Errors,
			res.Sent, res.Seconds, res.SetupSeconds, res.SetupMs.P50, res.SetupMs.P99, res.TLSMs.P50, res.AuthMs.P50)
	} else if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		fatal(err)
	}
	if res.Errors > 0 {
		fmt.Fprintf(os.Stderr, "smtpload: %d failed transactions or connections, first: %s\n", res.Errors, res.FirstError)
		os.Exit(1)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "smtpload:", err)
	os.Exit(1)
}

func usage(msg string) {
	fmt.Fprintln(os.Stderr, "smtpload:", msg)
	os.Exit(2)
}

// tlsConfig returns the client TLS configuration: the certificate verified
// against the CA in caFile for serverName (default: the host of addr), or,
// without caFile, not verified at all (a self-signed test certificate).
func tlsConfig(addr, caFile, serverName string) (*tls.Config, error) {
	if serverName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("-addr: %w", err)
		}
		serverName = host
	}
	cfg := &tls.Config{ServerName: serverName, MinVersion: tls.VersionTLS12}
	if caFile == "" {
		cfg.InsecureSkipVerify = true
		return cfg, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	cfg.RootCAs = x509.NewCertPool()
	if !cfg.RootCAs.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate", caFile)
	}
	return cfg, nil
}

// run starts the sessions and sums up what they measured. With
// cfg.connectFirst the sessions first connect (and shake hands and
// authenticate) together, and the message phase and its clock start only
// when the last one is ready, so msg/s is the steady state and the set-up
// is reported on its own.
func run(cfg config, msgs []payload) result {
	var (
		mu    sync.Mutex
		all   sessionStats
		wg    sync.WaitGroup
		ready sync.WaitGroup
	)
	release := make(chan struct{})
	ready.Add(cfg.sessions)
	t0 := time.Now()
	// With connectFirst it is set again before release is closed, and read
	// only after.
	deadline := t0.Add(cfg.maxTime)
	for i := range cfg.sessions {
		wg.Go(func() {
			s := &loadSession{cfg: cfg, msgs: msgs, next: i}
			if cfg.connectFirst {
				s.connect()
				ready.Done()
				<-release
			}
			s.run(deadline)
			mu.Lock()
			defer mu.Unlock()
			all.merge(&s.st)
		})
	}
	var setup time.Duration
	start := t0
	if cfg.connectFirst {
		ready.Wait()
		start = time.Now()
		setup = start.Sub(t0)
		deadline = start.Add(cfg.maxTime)
		close(release)
	}
	wg.Wait()
	elapsed := time.Since(start)

	res := result{
		Addr:          cfg.addr,
		Sessions:      cfg.sessions,
		MessageBytes:  len(msgs[0].body),
		Sent:          len(all.data),
		Errors:        all.errs,
		Seconds:       round(elapsed.Seconds()),
		MsgPerSec:     round(float64(len(all.data)) / elapsed.Seconds()),
		DataLatencyMs: percentiles(all.data),
		TxnLatencyMs:  percentiles(all.txn),
		SetupSeconds:  round(setup.Seconds()),
		Connections:   len(all.setup),
		SetupMs:       percentiles(all.setup),
		TLSMs:         percentiles(all.tls),
		AuthMs:        percentiles(all.auth),
		TLS:           all.tlsState,
	}
	if all.firstError != nil {
		res.FirstError = all.firstError.Error()
	}
	if len(all.data)+all.errs < cfg.sessions*cfg.messages {
		res.Stopped = fmt.Sprintf("max-time %v reached, or a session's set-up failed %d times in a row", cfg.maxTime, maxDialFailures)
	}
	return res
}

func percentiles(ds []time.Duration) latency {
	if len(ds) == 0 {
		return latency{}
	}
	slices.Sort(ds)
	at := func(q float64) float64 {
		i := int(q*float64(len(ds))+0.5) - 1
		i = max(0, min(i, len(ds)-1))
		return ms(ds[i])
	}
	return latency{P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: ms(ds[len(ds)-1])}
}

func ms(d time.Duration) float64 { return round(float64(d) / float64(time.Millisecond)) }

func round(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }
