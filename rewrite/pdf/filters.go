package pdf

import (
	"bytes"
	"compress/lzw"
	"fmt"
	"io"
	"regexp"

	tifflzw "golang.org/x/image/tiff/lzw"
)

// lzwDecode undoes LZWDecode (PDF 32000-1 section 7.4.4): codes of 9 to
// 12 bits, most significant bit first, 256 the clear code and 257 the end.
// With /EarlyChange 1, the default, the code width grows one code early,
// as in TIFF (golang.org/x/image/tiff/lzw); /EarlyChange 0 is the plain
// variant of GIF (compress/lzw). Decoded within the budget, as inflate.
func (s *scanner) lzwDecode(dict, raw []byte) ([]byte, error) {
	var r io.ReadCloser
	if lateChange.Match(dict) {
		r = lzw.NewReader(bytes.NewReader(raw), lzw.MSB, 8)
	} else {
		r = tifflzw.NewReader(bytes.NewReader(raw), tifflzw.MSB, 8)
	}
	defer r.Close()
	return s.bounded(r, raw)
}

// lateChange finds /EarlyChange 0 in a stream's decode parameters. Its
// other parameters (/Predictor) only matter to images.
var lateChange = regexp.MustCompile(`/EarlyChange\s+0\b`)

// runLengthDecode undoes RunLengthDecode (PDF 32000-1 section 7.4.5): a
// length byte n below 128 is followed by n+1 bytes to copy, one above 128
// by one byte to repeat 257-n times; 128 ends the data. Each run is
// counted against the budget as it is written: two raw bytes may become
// 128.
func (s *scanner) runLengthDecode(raw []byte) ([]byte, error) {
	limit := s.limit(raw)
	out := make([]byte, 0, max(0, min(limit, 2*int64(len(raw)))))
	for i := 0; i < len(raw); {
		n := int(raw[i])
		i++
		switch {
		case n == 128:
			i = len(raw)
		case n < 128:
			end := min(i+n+1, len(raw)) // a run cut short keeps what it has
			out = append(out, raw[i:end]...)
			i = end
		case i < len(raw):
			out = append(out, bytes.Repeat(raw[i:i+1], 257-n)...)
			i++
		}
		if int64(len(out)) > limit {
			return nil, ErrLimit
		}
	}
	s.decoded += int64(len(out))
	return out, nil
}

// limit is how many bytes one stream of raw may decode to: what the
// file's budget has left, and at most MaxRatio times its raw size (plus
// room for small streams, which compress best).
func (s *scanner) limit(raw []byte) int64 {
	return min(s.limits.MaxDecodedBytes-s.decoded, s.limits.MaxRatio*int64(len(raw))+64<<10)
}

// reserveBuffers tells Limits.Reserve what the two buffers take now, if
// that grew since it was told last.
func (s *scanner) reserveBuffers() error {
	held := int64(s.outs[0].Cap() + s.outs[1].Cap())
	if s.limits.Reserve == nil || held <= s.reservedBytes {
		return nil
	}
	if err := s.limits.Reserve(held); err != nil {
		s.reserveErr = err
		return err
	}
	s.reservedBytes = held
	return nil
}

// reservingReader asks for the buffers' growth (reserveBuffers) before
// each read into them: bytes.Buffer.ReadFrom grows the buffer, then reads.
// A refusal ends the read.
type reservingReader struct {
	r io.Reader
	s *scanner
}

func (rr reservingReader) Read(p []byte) (int, error) {
	if err := rr.s.reserveBuffers(); err != nil {
		return 0, err
	}
	return rr.r.Read(p)
}

// bounded reads a decoder's output within the stream's limit. A stream cut
// short keeps what was decoded: readers show it too. The output is valid
// until the next call but one: the scanner's two buffers take turns, so
// that a filter can read the one before it ([/FlateDecode /FlateDecode])
// while the file is decoded without a new buffer per stream.
func (s *scanner) bounded(r io.Reader, raw []byte) ([]byte, error) {
	limit := s.limit(raw)
	s.turn = 1 - s.turn
	out := &s.outs[s.turn]
	out.Reset()
	out.Grow(int(min(limit, 8*int64(len(raw))+512)))
	if err := s.reserveBuffers(); err != nil {
		return nil, err
	}
	var src io.Reader = io.LimitReader(r, limit+1)
	if s.limits.Reserve != nil {
		src = reservingReader{src, s}
	}
	n, err := out.ReadFrom(src)
	if s.reserveErr != nil {
		return nil, s.reserveErr
	}
	if n > limit {
		return nil, ErrLimit
	}
	if err != nil && out.Len() == 0 {
		return nil, fmt.Errorf("%w: %w", ErrUnreadable, err)
	}
	s.decoded += n
	return out.Bytes(), nil
}
