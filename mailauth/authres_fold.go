package mailauth

import "strings"

// FoldResults returns a results field, head then value, folded after each
// "; " outside quoted strings, ending in CRLF. It serves the
// Authentication-Results field (RFC 8601) and ARC-Authentication-Results
// (RFC 8617 §4.1.1) alike: one line per method keeps the field under RFC
// 5322 §2.1.1's 998 octets even with ten DKIM signatures. The "; " inside
// a quoted reason="a; b" is not a separator and stays on its line.
func FoldResults(head, value string) string {
	var b strings.Builder
	b.WriteString(head)
	quoted, escaped := false, false
	for i := 0; i < len(value); i++ {
		c := value[i]
		switch {
		case escaped:
			escaped = false
		case quoted && c == '\\':
			escaped = true
		case c == '"':
			quoted = !quoted
		case !quoted && c == ';' && i+1 < len(value) && value[i+1] == ' ':
			b.WriteString(";\r\n\t")
			i++
			continue
		}
		b.WriteByte(c)
	}
	b.WriteString("\r\n")
	return b.String()
}
