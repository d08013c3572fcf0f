// Package tokenize is the token map: it turns customer e-mail addresses
// into reversible tokens and back.
//
//   - Derivation (token.go): token = prefix + key version + base32 of
//     HMAC-SHA256(token key, tenant ‖ normalized address), 80 bits by
//     default; deterministic, so a customer keeps one pseudonym and any
//     node computes it without coordination. A token already held by
//     another address is a collision: the token is lengthened.
//   - Records (record.go): the address and display name exist only as
//     AES-256-GCM ciphertext bound to the token; the index is the keyed
//     hash. Erased tokens stay as tombstones and are never reissued.
//   - The Map (tokenmap.go) holds that logic once, with its caches
//     (known addresses, batched last-seen times), re-encryption after a
//     record-key rotation, retention expiry and erasure (erasure.go), and
//     the audit outbox (outbox.go): the record of each creation and expiry
//     is committed with the change and delivered to the trail after.
//   - Storage is a Store (store.go, the contract on one page): bbolt in
//     tokenize/boltstore, etcd in tokenize/etcdstore, an in-memory one and
//     the conformance suite in tokenize/storetest. A store shared by
//     several nodes also implements Elector (re-encryption and retention
//     run on one node at a time) and OutboxTakeover (a dead node's audit
//     outbox is delivered by a survivor), and may keep last-seen times
//     apart from the records (SeenTx: etcd, each node's own, so a use
//     never rewrites a record); bbolt keeps them in the record.
//
// No address reaches a log, an error text or the store in plaintext.
package tokenize
