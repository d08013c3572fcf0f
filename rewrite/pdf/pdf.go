// Package pdf finds e-mail addresses in PDF files (issue 17, item 2): in
// every string of the file (the info dictionary, link annotations'
// mailto: URIs, bookmarks, form fields), in every stream once its filters
// (Flate, LZW, RunLength, ASCIIHex, ASCII85; images skipped, any other
// filter makes the file unreadable) are undone (content streams, whose
// text is read from the operands of its text-showing operators, a TJ
// array joined into one string; XMP metadata, read as XML; object
// streams), literal and hexadecimal strings alike, UTF-16BE text strings
// decoded.
//
// It finds and does not rewrite: a replacement token is longer than the
// address it replaces, and a content stream's text is drawn with fonts
// that may lack the new characters, so a PDF is not rewritten in place.
// The caller decides what becomes of a PDF with an address in it.
//
// Why not a PDF library: the one maintained pure-Go reader on the module
// proxy (github.com/pdfcpu/pdfcpu) decodes every stream and object stream
// whole while it reads a file, with no bound: one deflate bomb in an
// attachment would take the proxy's memory. Scanning needs far less than
// a reader (no xref; of the object graph only which streams the fonts'
// /ToUnicode entries name, tounicode.go; fonts only through their
// ToUnicode CMaps, cmap.go), so this package reads the file's bytes
// itself, with budgets on decoded bytes, CMaps and scanned text (Limits,
// ErrLimit).
package pdf

import (
	"bytes"
	"errors"
	"io"

	"github.com/tokenproxy/tokenproxy/rewrite/scan"
)

// ErrUnreadable: the file is not a PDF this package can read whole (a
// filter it does not decode, a damaged stream, encryption). Addresses may
// hide in it.
var ErrUnreadable = errors.New("pdf: content cannot be read")

// ErrLimit: the decoded streams exceed Limits (a decompression bomb, or
// simply a very large document).
var ErrLimit = errors.New("pdf: decoded content exceeds the limit")

// Limits bound the work one file may cause.
type Limits struct {
	MaxDecodedBytes int64 // all streams decoded, together; default 64 MiB
	MaxRatio        int64 // decoded bytes per raw byte of one stream; default 200
	// Reserve, when set, is told the bytes the decoded-stream buffers
	// take whenever they grow; its error ends the scan as it is (the
	// caller's budget of memory held at once).
	Reserve func(held int64) error
}

func (l Limits) withDefaults() Limits {
	if l.MaxDecodedBytes <= 0 {
		l.MaxDecodedBytes = 64 << 20
	}
	if l.MaxRatio <= 0 {
		l.MaxRatio = 200
	}
	return l
}

// IsPDF reports whether data starts like a PDF file ("%PDF-" within its
// first KiB, as readers accept it).
func IsPDF(data []byte) bool {
	return bytes.Contains(data[:min(len(data), 1024)], []byte("%PDF-"))
}

// Scan calls fn for every address found in the PDF file data and returns
// how many addresses fn replaced (returned a non-empty replacement for);
// the replacements are not written anywhere. fn's error stops the scan and
// is returned as it is.
func Scan(data []byte, limits Limits, fn scan.AddrFunc) (n int, err error) {
	if !IsPDF(data) {
		return 0, ErrUnreadable
	}
	defer func() {
		if r := recover(); r != nil { // a reader bug must not take the proxy down
			n, err = 0, ErrUnreadable
		}
	}()
	s := &scanner{limits: limits.withDefaults(), fn: fn}
	if bytes.Contains(data, []byte("/Encrypt")) && hasEncryptDict(data) {
		return 0, ErrUnreadable
	}
	if err := s.file(data); err != nil {
		return 0, err
	}
	return s.replaced, nil
}

// hasEncryptDict: the trailer names an /Encrypt dictionary (PDF 32000-1
// section 7.6): strings and streams are then ciphertext.
func hasEncryptDict(data []byte) bool {
	for i := 0; ; {
		j := bytes.Index(data[i:], []byte("/Encrypt"))
		if j < 0 {
			return false
		}
		i += j + len("/Encrypt")
		rest := bytes.TrimLeft(data[i:min(len(data), i+32)], " \t\r\n")
		if len(rest) > 0 && (rest[0] >= '0' && rest[0] <= '9' || rest[0] == '<') {
			return true
		}
	}
}

type scanner struct {
	limits      Limits
	fn          scan.AddrFunc
	decoded     int64 // stream bytes decoded
	scanned     int64 // text bytes scanned
	replaced    int
	cmaps       []*cmap // the file's ToUnicode CMaps
	atCMaps     []*cmap // those of them that can make an address
	cmapEntries int     // their entries, together
	// pre holds the streams preread decoded, by the offset of their
	// "stream" keyword: true for a CMap it read.
	pre map[int]bool
	// again counts the streams decoded a second time, for CMaps found
	// after them.
	again int
	// run, win and words are readStrings' buffers, kept between streams.
	run        run
	win, words []byte
	hits       []int
	skipTable  skipTable // hitBytes' table, for readStrings
	skipped    int       // streams whose strings mayHit spared reading
	noSkip     bool      // tokenize every stream whole: tests check mayHit against it
	// inflater and rawReader are inflate's, kept between streams.
	inflater  io.ReadCloser
	rawReader bytes.Reader
	// outs are bounded's output buffers, taking turns: a decoded stream
	// lives until the next stream is decoded.
	outs [2]bytes.Buffer
	turn int
	// reservedBytes is what Limits.Reserve was last told the buffers
	// take; reserveErr its refusal, which ends the scan.
	reservedBytes int64
	reserveErr    error
}

// maxCMaps bounds the ToUnicode CMaps read from one file: each one means
// another reading of every content stream.
const maxCMaps = 64

// text scans one piece of text for addresses, within the budget: every
// content stream read once more per CMap must not turn a small file into
// minutes of work.
func (s *scanner) text(kind scan.TextKind, b []byte) error {
	if s.scanned += int64(len(b)); s.scanned > 8*s.limits.MaxDecodedBytes {
		return ErrLimit
	}
	_, _, err := scan.ReplaceAddresses(kind, b, func(a string) (string, error) {
		r, err := s.fn(a)
		if r != "" {
			s.replaced++
		}
		return "", err
	})
	return err
}

// file scans the file: the CMaps its fonts name first (preread), then
// each stream decoded and read as it comes, then the bytes outside
// streams (dictionaries and their strings). The strings of a stream that
// shows text are read with every CMap of the file known by then that can
// make an address: telling which font a string is shown in would take the
// object graph, and a CMap that is not the string's own only makes up
// text. A CMap found after such a stream (one that no font names) has the
// stream decoded again for its reading rather than kept: a decoded stream
// lives only while it is read (a text-dense 1 MB file decodes to 10 MB).
func (s *scanner) file(data []byte) error {
	if err := s.preread(data); err != nil {
		return err
	}
	var outside []byte
	type span struct {
		dict, raw []byte
		read      int // the CMaps it was read with: atCMaps[:read]
	}
	var shown []span
	for i := 0; i < len(data); {
		kw, ds, de, next, dict := nextStream(data, i)
		if kw < 0 {
			outside = append(outside, data[i:]...)
			break
		}
		outside = append(outside, data[i:kw]...)
		content, err := s.decodeOnce(kw, dict, data[ds:de])
		if err != nil {
			return err
		}
		if !s.pre[kw] {
			if err := s.addCMap(content); err != nil {
				return err
			}
		}
		if isXMP(dict) {
			err = s.text(scan.TextHTML, content)
		} else {
			err = s.readings(content, s.atCMaps)
			if showsText(content) {
				shown = append(shown, span{dict, data[ds:de], len(s.atCMaps)})
			}
		}
		if err != nil {
			return err
		}
		i = next
	}
	if err := s.readings(outside, s.atCMaps); err != nil {
		return err
	}
	for _, st := range shown {
		if st.read == len(s.atCMaps) {
			continue
		}
		s.again++
		content, err := s.decodeAgain(st.dict, st.raw)
		if err != nil {
			return err
		}
		if err := s.readStrings(content, false, s.atCMaps[st.read:]); err != nil {
			return err
		}
	}
	return nil
}

// decodeOnce decodes the stream at kw for the file's pass: counted
// against the budget unless preread did so already.
func (s *scanner) decodeOnce(kw int, dict, raw []byte) ([]byte, error) {
	if _, done := s.pre[kw]; done {
		return s.decodeAgain(dict, raw)
	}
	return s.decode(dict, raw)
}

// decodeAgain decodes a stream the file's pass already decoded, with the
// budget it had then or more (its output is the same), and without
// counting it twice.
func (s *scanner) decodeAgain(dict, raw []byte) ([]byte, error) {
	spent := s.decoded
	s.decoded = 0
	content, err := s.decode(dict, raw)
	s.decoded = spent
	return content, err
}

// addCMap reads content as a ToUnicode CMap if it holds one.
func (s *scanner) addCMap(content []byte) error {
	if !bytes.Contains(content, []byte("begincmap")) {
		return nil
	}
	if len(s.cmaps) == maxCMaps {
		return ErrLimit
	}
	cm := parseCMap(content, maxCMapEntries-s.cmapEntries)
	if cm != nil && cm.full() {
		return ErrLimit
	}
	if cm != nil {
		s.cmaps = append(s.cmaps, cm)
		s.cmapEntries += len(cm.m)
		if cm.mayShowAt {
			s.atCMaps = append(s.atCMaps, cm)
		}
	}
	return nil
}

// isXMP: the stream is XMP metadata (PDF 32000-1 section 14.3.2), read as
// XML.
func isXMP(dict []byte) bool {
	return bytes.Contains(dict, []byte("/Metadata")) || bytes.Contains(dict, []byte("/XML"))
}

// showsText: b holds a text-showing operator (PDF 32000-1 section 9.4.3),
// whose operands a font's CMap may read.
// One pass for both: a stream of TJ arrays ends with a Tj often enough,
// and two searches read it whole.
func showsText(b []byte) bool {
	for i := 0; ; i++ {
		j := bytes.IndexByte(b[i:], 'T')
		if j < 0 || i+j+1 >= len(b) {
			return false
		}
		i += j
		if b[i+1] == 'j' || b[i+1] == 'J' {
			return true
		}
	}
}

// readings scans PDF syntax (the file outside streams, a content stream,
// an object stream) as it is, then its strings: as they are (if one may
// hold an '@'), and, if it shows text, read with each CMap of cms.
func (s *scanner) readings(b []byte, cms []*cmap) error {
	if err := s.text(scan.TextPlain, b); err != nil {
		return err
	}
	if !showsText(b) {
		cms = nil // no text shown: no font's codes to read
	}
	return s.readStrings(b, mayHoldAt(b), cms)
}

// readStrings scans the words of b's strings that may make an address
// (runs.go): read as they are if plain, and with each CMap of cms.
func (s *scanner) readStrings(b []byte, plain bool, cms []*cmap) error {
	if !plain && len(cms) == 0 {
		return nil
	}
	if !s.noSkip {
		hitBytes(&s.skipTable, plain, cms)
		from, hit := mayHit(b, &s.skipTable)
		if !hit {
			s.skipped++
			return nil // no string holds a code that reads as '@' or '%' (skip.go)
		}
		b = b[from:]
	}
	words := s.stringWords(b, plain, cms)
	s.words = words[:0]
	return s.text(scan.TextPlain, words)
}

// stringWords returns the words of b's strings that may make an address,
// read as they are if plain and with each CMap of cms, one a line, in
// s.words' buffer.
func (s *scanner) stringWords(b []byte, plain bool, cms []*cmap) []byte {
	words := s.words[:0]
	forRuns(b, &s.run, func(r *run) {
		if plain {
			words = s.readRun(words, r, reading{})
		}
		for _, cm := range cms {
			words = s.readRun(words, r, reading{cm})
		}
	})
	return words
}
