// Command smtpload is the latency-measuring SMTP load client of
// test/bench-smtp.sh. smtp-source gives throughput only; smtpload gives
// per-message latency too.
//
// N sessions each send M messages over one connection (MAIL, RCPT, DATA,
// no RSET in between, as RFC 5321 §4.1.1.4 allows after a completed
// transaction) and it prints one JSON object: throughput and the p50/p90/p99
// latency of the DATA-to-250 step (DATA command sent → 250 after the final
// dot), and of the whole transaction (MAIL → 250).
//
// The message is generated: headers and a text body that name three
// external addresses (the envelope sender and two more), padded to -size
// bytes. -write-message writes it to a file instead (LF line ends, the form
// smtp-source -F wants), so smtp-source can send the very same message.
//
//	smtpload -addr 127.0.0.1:2525 -sessions 20 -messages 100 -size 5120
//	smtpload -size 5120 -write-message /tmp/msg.eml
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
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
}

// result is what smtpload prints.
type result struct {
	Addr          string  `json:"addr"`
	Sessions      int     `json:"sessions"`
	MessageBytes  int     `json:"message_bytes"`
	Sent          int     `json:"sent"`
	Errors        int     `json:"errors"`
	FirstError    string  `json:"first_error,omitempty"`
	Seconds       float64 `json:"seconds"`
	MsgPerSec     float64 `json:"msg_per_s"`
	DataLatencyMs latency `json:"data_latency_ms"` // DATA sent → 250 after the dot
	TxnLatencyMs  latency `json:"txn_latency_ms"`  // MAIL sent → 250 after the dot
	Stopped       string  `json:"stopped,omitempty"`
}

type latency struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func main() {
	var cfg config
	var writeTo string
	flag.StringVar(&cfg.addr, "addr", "", "host:port of the SMTP server under test")
	flag.IntVar(&cfg.sessions, "sessions", 20, "parallel sessions (connections)")
	flag.IntVar(&cfg.messages, "messages", 100, "messages per session")
	flag.IntVar(&cfg.size, "size", 5*1024, "message size in bytes (headers included)")
	flag.StringVar(&cfg.from, "from", customer, "envelope sender")
	flag.StringVar(&cfg.to, "to", "support@company.example", "envelope recipient")
	flag.StringVar(&cfg.helo, "helo", "smtpload.example.net", "EHLO name")
	flag.DurationVar(&cfg.timeout, "timeout", time.Minute, "per-command timeout")
	flag.DurationVar(&cfg.maxTime, "max-time", 5*time.Minute, "stop starting new messages after this long")
	flag.StringVar(&writeTo, "write-message", "", "write the generated message to this file and exit")
	brief := flag.Bool("brief", false, "print one line instead of JSON: msg/s, DATA-to-250 p50 p90 p99 (ms), errors")
	flag.Parse()
	if flag.NArg() > 0 || cfg.size < 0 || cfg.sessions < 1 || cfg.messages < 0 {
		flag.Usage()
		os.Exit(2)
	}
	msg := message(cfg.size, cfg.to)
	if writeTo != "" {
		if err := os.WriteFile(writeTo, msg, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "smtpload:", err)
			os.Exit(1)
		}
		return
	}
	if cfg.addr == "" {
		fmt.Fprintln(os.Stderr, "smtpload: -addr is required")
		os.Exit(2)
	}
	res := run(cfg, msg)
	if *brief {
		fmt.Printf("%.0f %.2f %.2f %.2f %d\n", res.MsgPerSec, res.DataLatencyMs.P50, res.DataLatencyMs.P90, res.DataLatencyMs.P99, res.Errors)
	} else if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		fmt.Fprintln(os.Stderr, "smtpload:", err)
		os.Exit(1)
	}
	if res.Errors > 0 {
		fmt.Fprintf(os.Stderr, "smtpload: %d failed transactions, first: %s\n", res.Errors, res.FirstError)
		os.Exit(1)
	}
}

// tally collects the sessions' measurements.
type tally struct {
	mu       sync.Mutex
	data     []time.Duration
	txn      []time.Duration
	errors   int
	firstErr error
}

func (t *tally) add(data, txn []time.Duration, errs int, first error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.data = append(t.data, data...)
	t.txn = append(t.txn, txn...)
	t.errors += errs
	if t.firstErr == nil {
		t.firstErr = first
	}
}

func run(cfg config, msg []byte) result {
	var t tally
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(cfg.maxTime)
	for range cfg.sessions {
		wg.Go(func() {
			data, txn, errs, first := session(cfg, msg, deadline)
			t.add(data, txn, errs, first)
		})
	}
	wg.Wait()
	elapsed := time.Since(start)

	res := result{
		Addr:          cfg.addr,
		Sessions:      cfg.sessions,
		MessageBytes:  len(msg),
		Sent:          len(t.data),
		Errors:        t.errors,
		Seconds:       round(elapsed.Seconds()),
		MsgPerSec:     round(float64(len(t.data)) / elapsed.Seconds()),
		DataLatencyMs: percentiles(t.data),
		TxnLatencyMs:  percentiles(t.txn),
	}
	if t.firstErr != nil {
		res.FirstError = t.firstErr.Error()
	}
	if len(t.data)+t.errors < cfg.sessions*cfg.messages {
		res.Stopped = fmt.Sprintf("max-time %v reached", cfg.maxTime)
	}
	return res
}

// session sends cfg.messages messages over one connection, redialing after a
// failure that left the connection unusable.
func session(cfg config, msg []byte, deadline time.Time) (data, txn []time.Duration, errs int, first error) {
	var c *smtp.Client
	defer func() {
		if c != nil {
			c.Quit()
		}
	}()
	fail := func(err error) {
		errs++
		if first == nil {
			first = err
		}
		if c != nil {
			c.Close()
			c = nil
		}
	}
	for range cfg.messages {
		if time.Now().After(deadline) {
			break
		}
		if c == nil {
			var err error
			if c, err = dial(cfg); err != nil {
				fail(err)
				continue
			}
		}
		d, x, err := send(c, cfg, msg)
		if err != nil {
			fail(err)
			continue
		}
		data = append(data, d)
		txn = append(txn, x)
	}
	return data, txn, errs, first
}

func dial(cfg config) (*smtp.Client, error) {
	conn, err := net.DialTimeout("tcp", cfg.addr, cfg.timeout)
	if err != nil {
		return nil, err
	}
	c := smtp.NewClient(conn)
	c.CommandTimeout = cfg.timeout
	c.SubmissionTimeout = cfg.timeout
	if err := c.Hello(cfg.helo); err != nil {
		c.Close()
		return nil, fmt.Errorf("EHLO: %w", err)
	}
	return c, nil
}

// send runs one transaction and returns the DATA-to-250 and MAIL-to-250
// times.
func send(c *smtp.Client, cfg config, msg []byte) (data, txn time.Duration, err error) {
	t0 := time.Now()
	if err := c.Mail(cfg.from, nil); err != nil {
		return 0, 0, fmt.Errorf("MAIL: %w", err)
	}
	if err := c.Rcpt(cfg.to, nil); err != nil {
		return 0, 0, fmt.Errorf("RCPT: %w", err)
	}
	t1 := time.Now()
	w, err := c.Data()
	if err != nil {
		return 0, 0, fmt.Errorf("DATA: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return 0, 0, fmt.Errorf("DATA write: %w", err)
	}
	if err := w.Close(); err != nil {
		return 0, 0, fmt.Errorf("end of DATA: %w", err)
	}
	t2 := time.Now()
	return t2.Sub(t1), t2.Sub(t0), nil
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

// message builds a plain-text reply of about size bytes (LF line ends) whose
// headers and body name the three external addresses, the way a customer's
// reply quoting earlier mail does.
func message(size int, to string) []byte {
	var b strings.Builder
	b.Grow(size + 512)
	fmt.Fprintf(&b, "From: \"Customer One\" <%s>\n", customer)
	fmt.Fprintf(&b, "To: Support <%s>\n", to)
	fmt.Fprintf(&b, "Cc: \"Ann Other\" <%s>, %s\n", other1, other2)
	fmt.Fprintf(&b, "Reply-To: %s\n", customer)
	b.WriteString("Subject: Re: order 4711 arrived damaged\n")
	b.WriteString("Date: Sat, 21 Nov 2026 10:00:00 +0000\n")
	b.WriteString("Message-ID: <bench-4711@example.net>\n")
	b.WriteString("MIME-Version: 1.0\n")
	b.WriteString("Content-Type: text/plain; charset=utf-8\n")
	b.WriteString("Content-Transfer-Encoding: 8bit\n\n")
	b.WriteString("Hello,\n\nthe parcel arrived damaged. Please write to me, or to my colleagues\n")
	fmt.Fprintf(&b, "%s and <%s>, who ordered it with me.\n\n", other1, other2)
	fmt.Fprintf(&b, "Thanks,\nCustomer One <%s>\n\n", customer)
	fmt.Fprintf(&b, "On Fri, 20 Nov 2026, Support wrote:\n")
	const filler = "> Thank you for your order. We are sorry to hear about the damage and look into it.\n"
	for b.Len()+len(filler) <= size {
		b.WriteString(filler)
	}
	if pad := size - b.Len(); pad > 1 {
		b.WriteString(strings.Repeat("x", pad-1) + "\n")
	}
	return []byte(b.String())
}
