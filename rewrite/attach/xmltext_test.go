package attach

import "testing"

func TestRewriteXML(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"split across runs",
			`<w:p><w:r><w:t>Mail jane.doe</w:t></w:r><w:r><w:rPr><w:b/></w:rPr><w:t>@example.com</w:t></w:r><w:r><w:t xml:space="preserve"> today</w:t></w:r></w:p>`,
			`<w:p><w:r><w:t>Mail tok-jane-doe@relay.example</w:t></w:r><w:r><w:rPr><w:b/></w:rPr><w:t></w:t></w:r><w:r><w:t xml:space="preserve"> today</w:t></w:r></w:p>`},
		{"proofing marks between runs",
			`<w:p><w:r><w:t>jane</w:t></w:r><w:proofErr w:type="spellEnd"/><w:r><w:t>@exa</w:t></w:r><w:r><w:t>mple.com</w:t></w:r></w:p>`,
			`<w:p><w:r><w:t>tok-jane@relay.example</w:t></w:r><w:proofErr w:type="spellEnd"/><w:r><w:t></w:t></w:r><w:r><w:t></w:t></w:r></w:p>`},
		{"paragraphs part texts",
			`<w:p><w:r><w:t>Regards</w:t></w:r></w:p><w:p><w:r><w:t>bob@example.org</w:t></w:r></w:p>`,
			`<w:p><w:r><w:t>Regards</w:t></w:r></w:p><w:p><w:r><w:t>tok-bob@relay.example</w:t></w:r></w:p>`},
		{"adjacent properties",
			`<cp:coreProperties><dc:creator>jane@example.com</dc:creator><cp:lastModifiedBy>bob@example.org</cp:lastModifiedBy></cp:coreProperties>`,
			`<cp:coreProperties><dc:creator>tok-jane@relay.example</dc:creator><cp:lastModifiedBy>tok-bob@relay.example</cp:lastModifiedBy></cp:coreProperties>`},
		{"relationship target",
			`<Relationship Id="rId4" Type="http://x/hyperlink" Target="mailto:jane@example.com?subject=Hi" TargetMode="External"/>`,
			`<Relationship Id="rId4" Type="http://x/hyperlink" Target="mailto:tok-jane@relay.example?subject=Hi" TargetMode="External"/>`},
		{"percent-encoded target",
			`<Relationship Target="https://x.example/?to=jane%40example.com"/>`,
			`<Relationship Target="https://x.example/?to=tok-jane%40relay.example"/>`},
		{"ODF spans and a space element",
			`<text:p>Write to <text:span text:style-name="T1">jane</text:span>@example.com<text:s/>now</text:p>`,
			`<text:p>Write to <text:span text:style-name="T1">tok-jane@relay.example</text:span><text:s/>now</text:p>`},
		{"xlsx shared string with rich runs",
			`<si><r><rPr><b/><sz val="11"/></rPr><t>jane</t></r><r><t>@example.com</t></r></si><si><t>x</t></si>`,
			`<si><r><rPr><b/><sz val="11"/></rPr><t>tok-jane@relay.example</t></r><r><t></t></r></si><si><t>x</t></si>`},
		{"xlsx inline string",
			`<row r="1"><c r="A1" t="inlineStr"><is><t>jane@example.com</t></is></c><c r="B1"><v>3</v></c></row>`,
			`<row r="1"><c r="A1" t="inlineStr"><is><t>tok-jane@relay.example</t></is></c><c r="B1"><v>3</v></c></row>`},
		{"app.xml company",
			`<Properties><Company>Jane jane@example.com</Company><Manager>bob@example.org</Manager></Properties>`,
			`<Properties><Company>Jane tok-jane@relay.example</Company><Manager>tok-bob@relay.example</Manager></Properties>`},
		{"field code of a hyperlink",
			`<w:r><w:instrText xml:space="preserve"> HYPERLINK "mailto:jane@example.com" </w:instrText></w:r>`,
			`<w:r><w:instrText xml:space="preserve"> HYPERLINK "mailto:tok-jane@relay.example" </w:instrText></w:r>`},
		{"character reference",
			`<a:p><a:r><a:t>jane&#64;example.com &amp; co</a:t></a:r></a:p>`,
			`<a:p><a:r><a:t>tok-jane@relay.example &amp; co</a:t></a:r></a:p>`},
		{"comment author attribute",
			`<w:comment w:id="0" w:author="jane@example.com" w:initials="J"><w:p/></w:comment>`,
			`<w:comment w:id="0" w:author="tok-jane@relay.example" w:initials="J"><w:p/></w:comment>`},
		{"marker text in the document is kept",
			`<x>&lt;p tp-block0&gt; <p tp-block0>a@example.com</x>`,
			`<x>&lt;p tp-block0&gt; <p tp-block0>tok-a@relay.example</x>`},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, changed, err := rewriteXML([]byte(c.in), tokenOf)
			if err != nil || !changed || string(out) != c.want {
				t.Fatalf("rewriteXML = %v %v\n got %s\nwant %s", changed, err, out, c.want)
			}
			if _, _, err := rewriteXML(out, leakCheck); err != nil {
				t.Fatalf("the rewritten XML still holds an address: %s", out)
			}
		})
	}
}

func TestRewriteXMLUnchanged(t *testing.T) {
	in := []byte(`<?xml version="1.0"?><w:p><w:r><w:t>no address &amp; here, a@relay.example</w:t></w:r></w:p>`)
	out, changed, err := rewriteXML(in, tokenOf)
	if err != nil || changed || &out[0] != &in[0] {
		t.Fatalf("unchanged XML: changed=%v err=%v, or not the same slice", changed, err)
	}
}
