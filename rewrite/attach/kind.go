package attach

import (
	"bytes"
	"path"
	"strings"
	"unicode/utf8"
)

// Kind is the kind of content an attachment or archive member holds, which
// decides how it is read and which policy applies.
type Kind int

const (
	KindUnknown    Kind = iota // decided by sniffing the content
	KindOffice                 // OOXML or OpenDocument package
	KindArchive                // zip, gzip, tar
	KindText                   // text (plain, HTML/XML, calendar, a saved message)
	KindSigned                 // a signed office package (only as a policy key)
	KindPDF                    // PDF
	KindMedia                  // image, audio, video, font
	KindUnreadable             // encrypted, damaged, unknown binary
)

func (k Kind) String() string {
	switch k {
	case KindOffice:
		return "office"
	case KindArchive:
		return "archive"
	case KindText:
		return "text"
	case KindSigned:
		return "signed"
	case KindPDF:
		return "pdf"
	case KindMedia:
		return "media"
	case KindUnreadable:
		return "unreadable"
	}
	return "unknown"
}

// officeExt and the maps below name kinds by file extension; a name is
// trusted only when the media type is generic or absent.
var officeExt = map[string]bool{
	".docx": true, ".docm": true, ".dotx": true, ".dotm": true, ".xlsx": true, ".xlsm": true,
	".xltx": true, ".xltm": true, ".pptx": true, ".pptm": true, ".potx": true, ".ppsx": true,
	".odt": true, ".ods": true, ".odp": true, ".odg": true, ".ott": true, ".ots": true, ".otp": true,
}

var archiveExt = map[string]bool{".zip": true, ".gz": true, ".tgz": true, ".tar": true}

var textExt = map[string]bool{
	".txt": true, ".csv": true, ".tsv": true, ".md": true, ".log": true, ".json": true, ".yaml": true,
	".yml": true, ".xml": true, ".html": true, ".htm": true, ".xhtml": true, ".svg": true, ".ics": true,
	".vcf": true, ".eml": true, ".ini": true, ".conf": true,
}

var mediaExt = map[string]bool{
	".png": true, ".jpg": true, ".jpeg": true, ".gif": true, ".bmp": true, ".tif": true, ".tiff": true,
	".webp": true, ".emf": true, ".wmf": true, ".mp3": true, ".wav": true, ".mp4": true, ".mov": true,
	".ttf": true, ".otf": true, ".woff": true, ".woff2": true, ".heic": true, ".ico": true,
}

// Classify names the kind of a MIME part from its media type (lower case)
// and file name; KindUnknown asks for the content to be sniffed.
func Classify(mediaType, name string) Kind {
	switch {
	case strings.HasPrefix(mediaType, "application/vnd.openxmlformats-officedocument."),
		strings.HasPrefix(mediaType, "application/vnd.oasis.opendocument."),
		strings.HasPrefix(mediaType, "application/vnd.ms-word.document.macroenabled"),
		strings.HasPrefix(mediaType, "application/vnd.ms-excel.sheet.macroenabled"),
		strings.HasPrefix(mediaType, "application/vnd.ms-powerpoint.presentation.macroenabled"):
		return KindOffice
	case mediaType == "application/pdf", mediaType == "application/x-pdf":
		return KindPDF
	case mediaType == "application/zip", mediaType == "application/x-zip-compressed",
		mediaType == "application/x-zip", mediaType == "application/gzip", mediaType == "application/x-gzip",
		mediaType == "application/x-tar", mediaType == "application/x-gtar", mediaType == "application/x-compressed-tar":
		if k := byName(name); k == KindOffice {
			return k // a document sent as application/zip
		}
		return KindArchive
	case strings.HasPrefix(mediaType, "image/"), strings.HasPrefix(mediaType, "audio/"),
		strings.HasPrefix(mediaType, "video/"), strings.HasPrefix(mediaType, "font/"):
		return KindMedia
	}
	if k := byName(name); k != KindText {
		return k // text by name but not by type: sniffed, a name proves nothing
	}
	return KindUnknown
}

// byName is the kind a file name suggests, KindUnknown for none.
func byName(name string) Kind {
	ext := strings.ToLower(path.Ext(name))
	switch {
	case officeExt[ext]:
		return KindOffice
	case archiveExt[ext]:
		return KindArchive
	case ext == ".pdf":
		return KindPDF
	case mediaExt[ext]:
		return KindMedia
	case textExt[ext]:
		return KindText
	}
	return KindUnknown
}

// Sniff names the kind of content from its first bytes. Every zip is an
// archive to it: a package is told from an archive by its members, once
// the zip is open.
func Sniff(data []byte) Kind {
	switch {
	case bytes.HasPrefix(data, []byte("PK\x03\x04")), bytes.HasPrefix(data, []byte("PK\x05\x06")):
		return KindArchive
	case bytes.HasPrefix(data, []byte{0x1f, 0x8b}), isTar(data):
		return KindArchive
	case bytes.HasPrefix(data, []byte("%PDF-")):
		return KindPDF
	case looksText(data):
		return KindText
	}
	return KindUnreadable
}

// isTar: a POSIX or GNU tar header has "ustar" at offset 257.
func isTar(data []byte) bool {
	return len(data) >= 512 && bytes.HasPrefix(data[257:], []byte("ustar"))
}

// looksText: UTF-8 (or ASCII) without NUL or other C0 controls but
// white space, judged on the first 4 KiB. Other charsets (UTF-16, legacy
// single-byte ones) are left to the rewriter's charset handling.
func looksText(data []byte) bool {
	head, cut := data, false
	if len(head) > 4096 {
		head, cut = head[:4096], true
	}
	for i := 0; i < len(head); {
		r, n := utf8.DecodeRune(head[i:])
		if r == utf8.RuneError && n == 1 {
			return cut && len(head)-i < utf8.UTFMax // a character cut at the mark
		}
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' && r != '\f' || r == 0x7f {
			return false
		}
		i += n
	}
	return true
}
