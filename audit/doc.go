// Package audit keeps the proxy's audit trail: an append-only,
// tamper-evident JSON-lines file that compliance auditors (GDPR) read.
// It records which tokens were created, resolved, expired and erased, and
// every compliance request, by whom and with what outcome. It never holds
// an e-mail address: callers guarantee that, and Append refuses any '@'
// outside Tokens as a second defence.
//
// # Format
//
// One record per line, UTF-8 JSON, fields in the order of Record, "hash"
// last:
//
//	{"seq":1,"time":"2025-01-02T03:04:05.123456789Z","event":"audit.started","actor":"system","prev":"000…000","hash":"9f2c…"}
//
// The hash is the hex SHA-256 of the line's body: the line without its
// `,"hash":"<64 hex>"` before the final '}' (and without the '\n'). A
// verifier cuts that suffix off and hashes the bytes as written, so no
// JSON canonicalisation is involved. Seq starts at 1 and grows by one;
// prev is the hash of the record before (64 zeros for seq 1).
//
// A checkpoint record (event "checkpoint") carries key (the signer's key
// ID) and sig ("v<N>:<base64>", an Ed25519 signature by version N of that
// key) over CheckpointMessage(seq, prev): its own seq and the hash of the
// record before it, so it vouches for every record up to it. Checkpoints
// are written every Options.CheckpointEvery records, after
// Options.CheckpointInterval when records were added, on Checkpoint, and
// on Close.
//
// Token creation records come through compliance.MapAudit, the token
// map's CreateAuditor (it lives there so that this package imports nothing
// of ours): the map commits each record with its token (an outbox in the
// map's database) and a background loop appends them here, with
// detail "ref" naming the outbox entry and "committed" the commit time.
// After an unclean stop, entries already appended are found by ref
// (Delivered, reading backwards from the end) and not appended again.
//
// Next to the file, Path+".head" holds the seq and hash of the last
// record ("%020d %s\n"), rewritten in place after every batch. With
// Options.Sync the file is synced before the head is written, so after a
// power loss the head can lag the file but never lead it; without Sync
// either may be lost, and Open refuses a head that leads (see below).
// After restoring the file from a backup, remove its head file with it:
// Open recreates a missing head (and logs a warning).
//
// # Threat model
//
// What the trail detects, and what it does not:
//
//   - The hash chain and the head file detect a record edited, deleted,
//     inserted (even with a correct hash of its own), reordered, and a
//     tail cut off, by someone who does not also rewrite the head file.
//     Verify reports each with its line and seq.
//   - Someone who can write the file can also rewrite it whole, with a new
//     chain, and the head to match. The signed checkpoints are the answer:
//     the signing key stays in Vault transit (or in the local keyring),
//     so a rewritten stretch of file cannot carry valid checkpoints, and
//     Verify reports every checkpoint that does not verify. A rewrite of
//     the records after the last checkpoint, and of the head, is not
//     detected by the file alone: Report.UnsignedTail says how many records
//     depend on the file only, and deleted checkpoints show as a stretch
//     longer than the checkpoint period without one.
//   - Forwarding each line to syslog or a SIEM (Options.Forward) keeps an
//     external copy that the writer of the file cannot reach: comparing it
//     catches a rewrite of both file and head after the last forwarded
//     checkpoint. Forwarding is best effort; lost lines are counted.
//   - Anyone who can use the signing key (a Vault token with sign rights on
//     the transit key) can forge checkpoints. Guard that policy as the key.
//   - The trail proves what was recorded, not that everything was recorded:
//     a compromised proxy could skip Append. Callers should write the
//     record before acting, and fail the operation (451) when Append fails.
//
// # Writing
//
// Open takes an exclusive flock (a second writer gets ErrLocked), reads
// only the end of the file, and checks that the last record matches its
// hash and the head file (ErrTampered otherwise: run verify). A partial
// last line, left by a crash mid-write, was never acknowledged: Open cuts
// it and writes an "audit.recovered" record saying how many bytes it
// dropped. It then writes "audit.started"; Close writes "audit.stopped"
// and a final checkpoint.
//
// Appends from many goroutines are group-committed: one writer goroutine
// takes all queued records, chains them, writes them with one write(2)
// and one fdatasync, and then acknowledges every caller. A failed write or
// sync is undone by cutting the file back to its size before the batch;
// if that fails too, the Log refuses every write (ErrWrite) until a
// restart, where Open repairs the tail.
//
// # Reading
//
// Scan streams the records, Select filters them for the compliance API,
// and Verify checks the whole trail against the head file and the
// checkpoint keys.
package audit
