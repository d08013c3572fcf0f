// Package quarantine keeps the originals of the attachments the
// attachment policy stripped (rewrite.attachments: strip), so that the
// compliance team can still reach what the CRM never saw (DESIGN.md,
// "Beyond text parts"; issue 17 item 5).
//
// Each original is one file under <data_dir>/quarantine, sealed with
// AES-256-GCM under a key derived (HKDF-SHA256) from the token map's
// record key, the key that seals addresses in the map: whoever may read a
// record may read a quarantined part, and no one else. The file name is
// the part's reference (the one in the notice the CRM got and in the log
// line), and holds nothing else; the part's description (kind, file name
// as the CRM saw it, size, time) is sealed apart from its content, so a
// listing opens no content. Neither holds an address in plaintext.
//
// A file is written whole (internal/safeio) or not at all; Sweep deletes what is older than the retention.
package quarantine
