package scan

import "testing"

// TestScanFlowed: format=flowed (RFC 3676) is read as its reader joins it.
// Without the flowed view, "jane.doe@exa" and "mple.com" are two pieces
// of nothing and the address reaches the CRM.
func TestScanFlowed(t *testing.T) {
	runScanTable(t, TextFlowedDelSp, []scanCase{
		{name: "split by a soft break",
			in:    "write to jane.doe@exa \r\nmple.com today\r\n",
			found: []string{"jane.doe@example.com"},
			// the remainder starts with a space: stuffed (section 4.4)
			out: "write to tok@relay.test \r\n  today\r\n"},
		{name: "split at the at sign",
			in:    "write to jane.doe \r\n@example.com\r\n",
			found: []string{"jane.doe@example.com"},
			out:   "write to tok@relay.test \r\n\r\n"},
		{name: "split in a quote",
			in:    "> write to jane@exa \r\n> mple.com, thanks\r\n",
			found: []string{"jane@example.com"},
			out:   "> write to tok@relay.test \r\n> , thanks\r\n"},
		{name: "quote mark after the piece", // '>' at line start would deepen the quote
			in:    "jane@exa \r\nmple.com>x\r\n",
			found: []string{"jane@example.com"},
			out:   "tok@relay.test \r\n >x\r\n"},
		{name: "stuffed line keeps its stuffing",
			in:    "jane@exa \r\n mple.com and\r\n",
			found: []string{"jane@example.com"},
			out:   "tok@relay.test \r\n  and\r\n"},
		{name: "quote depth changes: no join",
			in:    "> foo jane@ex.com \r\nbar\r\n",
			found: []string{"jane@ex.com"},
			out:   "> foo tok@relay.test \r\nbar\r\n"},
		{name: "signature separator is not flowed",
			in:    "-- \r\njane@example.com\r\n",
			found: []string{"jane@example.com"},
			out:   "-- \r\ntok@relay.test\r\n"},
		{name: "hard break ends the address",
			in:    "jane.doe@exa\r\nmple.com\r\n",
			found: nil},
		{name: "bare LF", in: "jane@exa \nmple.com\n", found: []string{"jane@example.com"}, out: "tok@relay.test \n\n"},
		{name: "unsplit", in: "to jane@example.com\r\n", found: []string{"jane@example.com"}, out: "to tok@relay.test\r\n"},
	})
	runScanTable(t, TextFlowed, []scanCase{
		{name: "DelSp=no keeps the space: two words",
			in:    "jane.doe@exa \r\nmple.com\r\n",
			found: nil},
		{name: "DelSp=no joins words",
			in:    "mail jane.doe@example.com \r\nplease\r\n",
			found: []string{"jane.doe@example.com"},
			out:   "mail tok@relay.test \r\nplease\r\n"},
	})
}
