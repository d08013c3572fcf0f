package mailauth

import "testing"

func TestFoldResults(t *testing.T) {
	tests := []struct {
		name, head, value, want string
	}{
		{
			"methods on their own lines",
			"Authentication-Results: ",
			`mx.test; spf=pass smtp.mailfrom=t@relay.example; dkim=fail reason="a; b" header.d=example.com; dmarc=none`,
			"Authentication-Results: mx.test;\r\n\tspf=pass smtp.mailfrom=t@relay.example;\r\n\tdkim=fail reason=\"a; b\" header.d=example.com;\r\n\tdmarc=none\r\n",
		},
		{
			"escaped quote inside a quoted string",
			"ARC-Authentication-Results: i=1; ",
			`mx.test; dkim=fail reason="x\"; y"; spf=none`,
			"ARC-Authentication-Results: i=1; mx.test;\r\n\tdkim=fail reason=\"x\\\"; y\";\r\n\tspf=none\r\n",
		},
		{"two parts", "H: ", "mx.test; none", "H: mx.test;\r\n\tnone\r\n"},
		{"semicolon without a space stays", "H: ", "a;b", "H: a;b\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FoldResults(tt.head, tt.value); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}
