package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Record is one line of the trail. Append fills Seq, Time, Prev and Hash;
// callers fill the rest. No field may hold an e-mail address: see
// checkNoAddress.
type Record struct {
	Seq       uint64            `json:"seq"`
	Time      time.Time         `json:"time"` // UTC, RFC 3339 with nanoseconds
	Event     string            `json:"event"`
	Actor     string            `json:"actor,omitempty"` // "route:outbound", "officer:alice", "cli:root", "system"
	Route     string            `json:"route,omitempty"`
	Tokens    []string          `json:"tokens,omitempty"`
	MessageID string            `json:"msgid_hash,omitempty"` // hash of the Message-ID, computed by the caller
	Reason    string            `json:"reason,omitempty"`
	Outcome   string            `json:"outcome,omitempty"` // "ok", "refused", "not_found", "error"
	Count     int               `json:"count,omitempty"`
	Detail    map[string]string `json:"detail,omitempty"`
	Key       string            `json:"key,omitempty"` // checkpoint: signer key ID
	Sig       string            `json:"sig,omitempty"` // checkpoint: signature "v<N>:<base64>"
	// Prev and Hash must stay the last two fields: the hashed body is the
	// JSON of the record up to and including Prev (see encodeLine).
	Prev string `json:"prev"` // hex SHA-256 of the previous record (64 zeros for the first)
	Hash string `json:"hash"`
}

// Events. Metrics label records by these names only; any other event is
// counted as "other" so a caller cannot grow the label set.
const (
	TokenCreated      = "token.created"
	TokenResolved     = "token.resolved" // a route detokenized a message
	TokenExpired      = "token.expired"
	TokenErased       = "token.erased"
	ComplianceResolve = "compliance.resolve"
	ComplianceLookup  = "compliance.lookup"
	ComplianceExport  = "compliance.export"
	ComplianceErase   = "compliance.erase"
	ComplianceRefused = "compliance.refused"
	QuarantineList    = "quarantine.list"   // an officer listed the stripped attachments kept
	QuarantineExport  = "quarantine.export" // an officer took one out
	QuarantineDelete  = "quarantine.delete" // an officer deleted one
	AuditRead         = "audit.read"
	AuditVerify       = "audit.verify"
	KeysRotated       = "keys.rotated"
	ConfigReloaded    = "config.reloaded"
	Backup            = "backup"
	Restore           = "restore"
	StoreMigrated     = "store.migrated"          // proxy store migrate: the map moved between backends
	ErasuresReplayed  = "store.erasures_replayed" // tombstones replayed from the trails after a restore
	Checkpoint        = "checkpoint"
	Recovered         = "audit.recovered"
	Started           = "audit.started"
	Stopped           = "audit.stopped"
)

var knownEvents = []string{
	TokenCreated, TokenResolved, TokenExpired, TokenErased,
	ComplianceResolve, ComplianceLookup, ComplianceExport, ComplianceErase, ComplianceRefused,
	QuarantineList, QuarantineExport, QuarantineDelete,
	AuditRead, AuditVerify, KeysRotated, ConfigReloaded, Backup, Restore, StoreMigrated, ErasuresReplayed,
	Checkpoint, Recovered, Started, Stopped,
}

// MaxLineSize bounds one line of the file, newline included. Scan and
// Verify read lines up to this size, so the writer refuses longer ones.
const MaxLineSize = 1 << 20

// zeroHash is the Prev of the first record.
var zeroHash = strings.Repeat("0", 64)

// The line is the body with `,"hash":"<64 hex>"` inserted before its final
// '}'. Because Hash is the last field and is never omitted, json.Marshal
// of a record with an empty Hash ends in emptyHashTail, and the body is
// that output with the tail replaced by '}'.
const (
	emptyHashTail = `,"hash":""}`
	hashPrefix    = `,"hash":"`
	hashTailLen   = len(hashPrefix) + 64 + len(`"}`)
)

// encodeLine sets rec.Hash and returns the line to write, '\n' included.
// rec.Seq, Time and Prev must already be set.
func encodeLine(rec *Record) ([]byte, error) { return appendLine(nil, rec) }

// appendLine is encodeLine appending to buf, which the writer reuses for a
// whole batch. On error buf is returned unchanged.
func appendLine(buf []byte, rec *Record) ([]byte, error) {
	rec.Hash = ""
	b, err := json.Marshal(rec)
	if err != nil {
		return buf, fmt.Errorf("%w: encode: %w", ErrInvalidRecord, err)
	}
	if !bytes.HasSuffix(b, []byte(emptyHashTail)) {
		// Only a change to the Record struct can get here.
		return buf, fmt.Errorf("%w: encode: JSON does not end with the hash field", ErrInvalidRecord)
	}
	body := append(b[:len(b)-len(emptyHashTail)], '}')
	if n := len(body) + hashTailLen; n > MaxLineSize {
		return buf, fmt.Errorf("%w: line of %d bytes exceeds %d", ErrInvalidRecord, n, MaxLineSize)
	}
	sum := sha256.Sum256(body)
	rec.Hash = hex.EncodeToString(sum[:])

	buf = append(buf, body[:len(body)-1]...)
	buf = append(buf, hashPrefix...)
	buf = append(buf, rec.Hash...)
	buf = append(buf, `"}`...)
	return append(buf, '\n'), nil
}

// parseLine decodes a line (without its '\n') and returns the record and
// the hash of the bytes it was written from. rec.Hash is the hash the line
// states; the two differ when the line was edited.
func parseLine(line []byte) (rec Record, computed string, err error) {
	if len(line) < hashTailLen+2 || line[0] != '{' {
		return Record{}, "", errors.New("not a record line")
	}
	tail := line[len(line)-hashTailLen:]
	stated := tail[len(hashPrefix) : len(hashPrefix)+64]
	if !bytes.HasPrefix(tail, []byte(hashPrefix)) || !bytes.HasSuffix(tail, []byte(`"}`)) || !isLowerHex(stated) {
		return Record{}, "", errors.New("line does not end with a hash field")
	}
	// Hash the body without copying it: everything before the hash field,
	// then the '}' it replaced.
	h := sha256.New()
	h.Write(line[:len(line)-hashTailLen])
	h.Write([]byte{'}'})
	computed = hex.EncodeToString(h.Sum(nil))

	if err := json.Unmarshal(line, &rec); err != nil {
		return Record{}, "", fmt.Errorf("invalid JSON: %w", err)
	}
	if rec.Hash != string(stated) {
		// A second "hash" key earlier in the line would make the decoded
		// value differ from the suffix we hash against.
		return Record{}, "", errors.New("hash field is not the last field")
	}
	return rec, computed, nil
}

func isLowerHex(b []byte) bool {
	for _, c := range b {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// checkRecord refuses what a caller must not append. The '@' test is a
// cheap second defence: callers already guarantee no address reaches the
// trail, and a token ("t1-abc@relay.example") is the one place an '@'
// belongs. The error names the field, never its value.
func checkRecord(i int, rec *Record) error {
	if rec.Event == "" {
		return fmt.Errorf("%w: record %d has no event", ErrInvalidRecord, i)
	}
	if rec.Event == Checkpoint || rec.Key != "" || rec.Sig != "" {
		return fmt.Errorf("%w: record %d: checkpoints are written by the log itself", ErrInvalidRecord, i)
	}
	fields := []struct{ name, value string }{
		{"event", rec.Event}, {"actor", rec.Actor}, {"route", rec.Route},
		{"msgid_hash", rec.MessageID}, {"reason", rec.Reason}, {"outcome", rec.Outcome},
	}
	for _, f := range fields {
		if strings.ContainsRune(f.value, '@') {
			return fmt.Errorf("record %d field %s: %w", i, f.name, ErrAddressInRecord)
		}
	}
	for k, v := range rec.Detail {
		if strings.ContainsRune(k, '@') || strings.ContainsRune(v, '@') {
			return fmt.Errorf("record %d field detail: %w", i, ErrAddressInRecord)
		}
	}
	return nil
}
