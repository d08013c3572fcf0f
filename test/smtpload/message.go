package main

import (
	"fmt"
	"strings"
)

// payload is one message with its envelope recipient.
type payload struct {
	rcpt string
	body []byte
}

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
	pad(&b, size, "> Thank you for your order. We are sorry to hear about the damage and look into it.\n")
	return []byte(b.String())
}

// reply builds the CRM agent's answer to message: of about size bytes (LF
// line ends), from the CRM mailbox from to the customer's token to, with the
// colleagues' tokens cc1 and cc2 in Cc and in the text, and the customer's
// message quoted under its token. The outbound route resolves all three.
func reply(size int, from, to, cc1, cc2 string) []byte {
	var b strings.Builder
	b.Grow(size + 512)
	fmt.Fprintf(&b, "From: Acme Support <%s>\n", from)
	fmt.Fprintf(&b, "To: \"Customer One\" <%s>\n", to)
	fmt.Fprintf(&b, "Cc: \"Ann Other\" <%s>, %s\n", cc1, cc2)
	b.WriteString("Subject: Re: order 4711 arrived damaged\n")
	b.WriteString("Date: Sat, 21 Nov 2026 11:00:00 +0000\n")
	b.WriteString("Message-ID: <bench-4711-reply@crm.example>\n")
	b.WriteString("In-Reply-To: <bench-4711@example.net>\n")
	b.WriteString("MIME-Version: 1.0\n")
	b.WriteString("Content-Type: text/plain; charset=utf-8\n")
	b.WriteString("Content-Transfer-Encoding: 8bit\n\n")
	b.WriteString("Hello,\n\nwe are sorry about the damage and send a replacement today. We have\n")
	fmt.Fprintf(&b, "copied %s and <%s> as you asked.\n\n", cc1, cc2)
	b.WriteString("Kind regards,\nAcme Support\n\n")
	fmt.Fprintf(&b, "On Sat, 21 Nov 2026, Customer One <%s> wrote:\n", to)
	pad(&b, size, "> the parcel arrived damaged. Please write to me, or to my colleagues who ordered it.\n")
	return []byte(b.String())
}

// pad repeats line until b is about size bytes, then fills the rest with
// one line of x.
func pad(b *strings.Builder, size int, line string) {
	for b.Len()+len(line) <= size {
		b.WriteString(line)
	}
	if n := size - b.Len(); n > 1 {
		b.WriteString(strings.Repeat("x", n-1) + "\n")
	}
}

// payloads returns what the sessions send: the customer message to cfg.to,
// or with tokensFile one CRM reply per token (to it, with the next two in
// Cc), used in turn.
func payloads(cfg config, tokensFile string) ([]payload, error) {
	if tokensFile == "" {
		return []payload{{rcpt: cfg.to, body: message(cfg.size, cfg.to)}}, nil
	}
	toks, err := readLines(tokensFile)
	if err != nil {
		return nil, err
	}
	if len(toks) == 0 {
		return nil, fmt.Errorf("%s: no tokens", tokensFile)
	}
	ps := make([]payload, len(toks))
	for i, t := range toks {
		cc1, cc2 := toks[(i+1)%len(toks)], toks[(i+2)%len(toks)]
		ps[i] = payload{rcpt: t, body: reply(cfg.size, cfg.from, t, cc1, cc2)}
	}
	return ps, nil
}
