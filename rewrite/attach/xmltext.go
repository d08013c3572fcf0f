package attach

import (
	"bytes"
	"strconv"
	"sync"

	"github.com/tokenproxy/tokenproxy/rewrite/scan"
)

// rewriteXML replaces the addresses in one XML part of an office document
// (document body, shared strings, slides, comments, properties,
// relationships). The part is scanned as markup (scan.TextHTML): text
// between tags is one text, so the runs a word processor splits a
// formatted address into are read as one address, whose replacement the
// scanner writes into the first run while the others lose their share;
// attribute values (relationship targets, mailto: links, comment authors)
// are scanned too.
//
// What keeps two texts apart is a block boundary. HTML's block tags mean
// nothing in OOXML or ODF, so before the scan a marker tag the scanner
// reads as a block (<p …>) is put before every tag that does not sit
// inside a paragraph's run of text (see inlineTag), and taken out after:
// paragraphs, cells, properties and tabs part their texts, runs and
// spans do not.
func rewriteXML(data []byte, fn scan.AddrFunc) ([]byte, bool, error) {
	edits, err := rewriteXMLEdits(data, fn)
	if err != nil || len(edits) == 0 {
		return data, false, err
	}
	return applyEdits(data, edits), true, nil
}

// rewriteXMLEdits is rewriteXML that returns the changes instead of the
// new text: each changed chunk with its new bytes. A deflated part is
// spliced from them (splice.go) without its new text ever being built.
func rewriteXMLEdits(data []byte, fn scan.AddrFunc) ([]edit, error) {
	if !mayHoldAddress(data) {
		return nil, nil
	}
	var edits []edit
	for s := 0; s < len(data); {
		e := chunkEnd(data, s)
		res, changed, err := rewriteChunk(data[s:e], fn)
		if err != nil {
			return nil, err
		}
		if changed {
			edits = appendEdit(edits, edit{from: s, to: e, text: bytes.Clone(res)})
		}
		s = e
	}
	return edits, nil
}

// appendEdit appends e, joined to the last edit if they touch.
func appendEdit(edits []edit, e edit) []edit {
	if n := len(edits); n > 0 && edits[n-1].to == e.from {
		edits[n-1].to, edits[n-1].text = e.to, append(edits[n-1].text, e.text...)
		return edits
	}
	return append(edits, e)
}

// chunkSize is about how much XML is scanned at once: a document of 10 MB
// is scanned in pieces that the scanner's pooled buffers hold, and pieces
// without a candidate are not scanned at all. Small pieces (a few
// paragraphs) leave most of a long document unscanned: 4 KiB instead of
// 64 KiB took the text-only 1 MB docx from 65 to 51 ms CPU
// (docs/benchmarks.md).
const chunkSize = 4 << 10

// chunkEnd returns where the chunk starting at s ends: before the first
// paragraph-level start tag (see cutTag) at least chunkSize on, or at the
// end. No address a reader sees crosses a paragraph.
func chunkEnd(data []byte, s int) int {
	for i := s + chunkSize; i < len(data); {
		j := bytes.IndexByte(data[i:], '<')
		if j < 0 {
			break
		}
		i += j
		if name, closing, _ := tagName(data[i:min(i+64, len(data))]); !closing && cutTag(name) {
			return i
		}
		i++
	}
	return len(data)
}

// cutTag names the elements a chunk may start with: paragraphs (OOXML
// w:p and a:p, ODF text:p and text:h), shared strings, table rows and
// cells, relationships.
func cutTag(name string) bool {
	switch name {
	case "p", "h", "si", "row", "tr", "tc", "table-row", "Relationship":
		return true
	}
	return false
}

// rewriteChunk marks the block tags of one chunk, scans it and takes the
// markers out again. It returns chunk itself when nothing changed. The
// marker is chosen per chunk, and only for a chunk that is scanned:
// searching all of a 10 MB part for it cost more than its scan.
func rewriteChunk(chunk []byte, fn scan.AddrFunc) ([]byte, bool, error) {
	if !mayHoldAddress(chunk) {
		return chunk, false, nil
	}
	marker := markerFor(chunk)
	buf := markedBufs.Get().(*[]byte)
	defer markedBufs.Put(buf)
	*buf = markBlocks((*buf)[:0], chunk, marker)
	out, changed, err := scan.ReplaceAddresses(scan.TextHTML, *buf, fn)
	if err != nil || !changed {
		return chunk, false, err
	}
	return removeAll(out, marker), true, nil
}

// mayHoldAddress is the fast path of parts without a candidate: no '@',
// no "%40", no character reference that could stand for either.
func mayHoldAddress(b []byte) bool {
	if bytes.IndexByte(b, '@') >= 0 || bytes.Contains(b, []byte("%40")) {
		return true
	}
	return bytes.IndexByte(b, '&') >= 0 && (bytes.Contains(b, []byte("&#")) ||
		bytes.Contains(b, []byte("&commat")) || bytes.Contains(b, []byte("&percnt")))
}

// markedBufs recycles the marked copies of XML parts: a part of 10 MB
// would otherwise cost its allocation and zeroing on every document.
var markedBufs = sync.Pool{New: func() any { return new([]byte) }}

// removeAll removes every occurrence of m from b, in place.
func removeAll(b, m []byte) []byte {
	w := bytes.Index(b, m)
	if w < 0 {
		return b
	}
	r := w
	for {
		r += len(m)
		k := bytes.Index(b[r:], m)
		if k < 0 {
			w += copy(b[w:], b[r:])
			return b[:w]
		}
		w += copy(b[w:], b[r:r+k])
		r += k
	}
}

// markerFor returns a block tag that does not occur in data, so removing
// it after the scan removes exactly what was added. Replacements never
// hold '<'.
func markerFor(data []byte) []byte {
	for i := 0; ; i++ {
		m := []byte("<p tp-block" + strconv.Itoa(i) + ">")
		if !bytes.Contains(data, m) {
			return m
		}
	}
}

// markBlocks appends data to out with marker before every block tag.
func markBlocks(out, data, marker []byte) []byte {
	props := 0 // depth inside run properties: their children are inline too
	prev := 0
	for i := 0; i < len(data); {
		j := bytes.IndexByte(data[i:], '<')
		if j < 0 {
			break
		}
		j += i
		e := tagEnd(data, j)
		name, closing, empty := tagName(data[j:e])
		inline := props > 0 || inlineTag(name)
		if isProps(name) && !empty {
			if closing {
				props = max(props-1, 0)
			} else {
				props++
			}
		}
		if !inline {
			out = append(out, data[prev:j]...)
			out = append(out, marker...)
			prev = j
		}
		i = e
	}
	return append(out, data[prev:]...)
}

// tagEnd returns the end of the markup starting at data[j] == '<':
// comments, CDATA sections and processing instructions run to their own
// terminators, tags to the first '>' outside a quoted value.
func tagEnd(data []byte, j int) int {
	rest := data[j:]
	end := func(term string) int {
		if k := bytes.Index(rest, []byte(term)); k >= 0 {
			return j + k + len(term)
		}
		return len(data)
	}
	switch {
	case bytes.HasPrefix(rest, []byte("<!--")):
		return end("-->")
	case bytes.HasPrefix(rest, []byte("<![CDATA[")):
		return end("]]>")
	case bytes.HasPrefix(rest, []byte("<?")):
		return end("?>")
	}
	var quote byte
	for k := j + 1; k < len(data); k++ {
		switch c := data[k]; {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '>':
			return k + 1
		}
	}
	return len(data)
}

// tagName returns a tag's local name (its prefix dropped), whether it is
// an end tag, and whether it is empty (<x/>). Markup that is no element
// (comments, declarations) has no name.
func tagName(tag []byte) (name string, closing, empty bool) {
	if len(tag) < 2 {
		return "", false, false
	}
	i := 1
	if tag[i] == '/' {
		closing, i = true, i+1
	}
	s := i
	for i < len(tag) && tag[i] != ' ' && tag[i] != '\t' && tag[i] != '\r' && tag[i] != '\n' && tag[i] != '/' && tag[i] != '>' {
		i++
	}
	n := tag[s:i]
	if k := bytes.LastIndexByte(n, ':'); k >= 0 {
		n = n[k+1:]
	}
	empty = bytes.HasSuffix(tag, []byte("/>"))
	return string(n), closing, empty
}

// isProps: run and content-control properties, whose children (bold,
// colour, font size…) sit between the texts of one paragraph.
func isProps(name string) bool { return name == "rPr" || name == "sdtPr" }

// inlineTag reports whether a tag sits between the texts of one paragraph
// without parting them: runs and their text (OOXML WordprocessingML,
// SpreadsheetML rich text, DrawingML), spans and links (ODF), and the
// markers Word scatters between runs (proofing, bookmarks, revisions,
// fields, comment ranges). Everything else parts texts: a paragraph, a
// cell, a property element, a tab or line break (ODF text:s is a space).
func inlineTag(name string) bool {
	switch name {
	case "r", "t", "rPr", "sdtPr", "delText", "instrText", "hyperlink", "ins", "del", "moveFrom", "moveTo",
		"smartTag", "proofErr", "bookmarkStart", "bookmarkEnd", "fldChar", "fldSimple", "fld",
		"lastRenderedPageBreak", "commentRangeStart", "commentRangeEnd", "permStart", "permEnd",
		"customXml", "sdt", "sdtContent", "noProof", // OOXML
		"span", "a", "soft-page-break", "bookmark", "bookmark-start", "bookmark-end",
		"reference-mark", "reference-mark-start", "reference-mark-end", "change-start", "change-end": // ODF
		return true
	}
	return false
}
