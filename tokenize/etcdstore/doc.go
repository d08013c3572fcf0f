// Package etcdstore is the etcd backend of the token map
// (tokenize.Store), for several proxy nodes sharing one map. It owns the
// map's key layout in etcd, the optimistic transactions on top of etcd's
// Txn, this node's audit outbox, the watch that invalidates other nodes'
// caches, and the wipe after erasure. It never sees an address: records
// arrive sealed.
//
// # Layout
//
// Every key lives under <prefix><tenant>/ (store.go, layout): t/<token>
// records and tombstones, seen/<token>/<node> each node's last-seen time
// of a token (seen.go), outbox/<node>/<txn id>-<index> audit outbox
// entries, meta/<name> map values, keys/<purpose>/<version> wrapped data
// keys, and schema.
//
// # Last-seen times
//
// A record is written at its creation and then only by a rename,
// re-encryption or erasure: last-seen times live apart
// (tokenize.SeenTx), each node's under its own key, written by the map's
// batched flush (one Txn per MaxBatch tokens, each token read so that a
// racing erasure fails the commit), read as the latest over the nodes,
// and deleted as one range with the token's erasure. So a use neither
// adds a revision of the record's ciphertext to etcd's history nor, as
// the watch covers t/ only, drops the token from the other nodes'
// caches.
//
// # Transactions
//
// View reads at one revision: the first read is linearizable and pins it,
// later reads use WithRev, so fn sees a snapshot. Update runs fn the same
// way with its writes buffered (its reads see them), then commits them in
// one Txn whose compares say that nothing fn depended on changed since
// the snapshot; when one fails, fn runs again on a newer snapshot (the
// contract allows it). A leader change, an unavailable member or a timed
// out call is retried the same way while the Update is younger than
// RequestTimeout: a commit whose reply was lost fails its compares on the
// retry, and fn then finds its own writes (a new token is found, not made
// twice). Each etcd call is bounded by RequestTimeout, so a lost quorum
// is ErrStore within about twice that.
//
// Update's first run reads optimistically: serializably (any member, no
// quorum round), and a key that a View found absent within the last
// second is taken as absent without a read. The compares make that safe;
// a run that fails its compares, or whose fn returns an error, runs again
// on linearizable reads. Commits of concurrent Updates share one Txn when
// they fit in max-txn-ops and write disjoint keys (groupcommit.go); a
// shared Txn whose compares fail is retried commit by commit.
//
// A new token takes a shorter way (create.go, tokenize.Creator): one Txn
// If the token's key was never created (nor, after a token key rotation,
// the address's first-length token under each older key) Then put the
// record and its outbox entry Else get the key, through the same group
// commit, with no look-up before it. The map falls back to the look-up
// and an Update when a compared key holds something else (a tombstone,
// another address's token, the address's token under an older key).
//
// The compare rule: every key read through Token or Meta is compared
// (ModRevision unchanged, or CreateRevision 0 for a key that was absent),
// and so is every token written after a Tokens scan visited it. Tokens a
// scan visited but the transaction did not write are not compared. That
// is sound for the map's scans (expiry, re-encryption): each decides
// about a token from that token's own value, so a concurrent change to a
// token the batch left alone cannot make the batch wrong, while a change
// to one it rewrites (an erasure racing a re-encryption) fails the
// commit. Comparing every visited token would not fit: a re-encryption
// batch visits 500 tokens. Blind writes (outbox entries under fresh
// random names, outbox deletes, wrapped keys) are not compared.
//
// MaxBatch is etcd's --max-txn-ops (128 by default, Options.MaxTxnOps):
// etcd checks a transaction's compares and its writes against it
// separately, and under the rule above no caller of the map compares more
// keys than it writes or reads by Token: expiry erases MaxBatch/3 tokens
// (a tombstone, a range delete of its last-seen times and an outbox
// entry each, every tombstone read by Token), a replay of erasures
// MaxBatch/2, a last-seen flush reads at most MaxBatch tokens and writes
// as many last-seen keys, outbox deletes are blind. Last-seen reads are
// not compared: a use noted just after the read is as late as one noted
// just before. A transaction over the bound fails with ErrStore
// rather than being split, as its writes must land together.
//
// # Outbox
//
// An entry's ref is its create revision (zero-padded) followed by its key
// name: refs sort in commit order without a counter that would serialize
// the node's transactions, and the random transaction id in the name
// keeps them unique across a snapshot restore. Outbox lists this node's
// entries (Options.NodeID) and those of dead nodes it took over.
//
// # Nodes, takeover, elections
//
// Each node holds an etcd lease (Options.LeaseTTL, kept alive) and
// registers nodes/<id> under it (liveness.go); Open refuses a node id that
// a live node holds (a copied configuration), after waiting out the lease
// of a crashed earlier run of the same node. When a node's lease ends with
// entries in its outbox, one survivor claims the outbox by writing
// takeover/<id> under its own lease in a transaction that requires both
// keys absent, delivers the entries to its own trail (they keep their
// refs) and drops the claim once the outbox is empty (takeover.go); the
// dead node, restarted, registers only after that. Outbox checks the
// registration and the claims at its snapshot, so a node that lost its
// lease stops reading an outbox that another node may be delivering. A
// claimer that dies between delivering and deleting leaves records that
// the next claimer delivers again, to its own trail, under the same refs:
// the cluster's audit merge sees the duplicate by its ref. Lead
// (elect.go) is an etcd election under elect/<task>/ on the same lease:
// a dead leader's tasks move to another node after the lease TTL, a
// closed one's at once (Close revokes the lease).
//
// # Freshness
//
// Each node caches known addresses, and a watch on the token keys drops
// entries other nodes changed. The store is fresh (tokenize.Freshness,
// fresh.go) while a linearizable read of the cluster's revision, sent
// within Options.Freshness (1 s by default), has been matched by the
// watch: etcd reported progress (RequestProgress, answered once the
// stream's watchers caught up) up to that revision. A check runs every
// 250 ms, and at once when a watch opens. So an erasure committed on
// another node has reached this node's caches within Freshness plus one
// check, or the node is stale: the map then answers known addresses from
// its cache for a grace only, refuses resolutions (451 4.3.0 on the
// routes), and the node is not ready. Fresh only reads the checker's
// state: a lost quorum makes the node stale once Freshness has passed
// since the last confirmed read, however long the read under way takes
// to fail. A watch starts at a revision read before it opens, and counts
// as delivered up to the revision before the one it resumes at, as etcd
// answers no progress request for a watch that starts after its current
// revision.
//
// # Data keys
//
// The wrapped data keys live under keys/, so every node unwraps the same
// keys through its KEK. WatchKeys (keyswatch.go) signals each change there
// and each (re)opening of its watch; the map then unwraps the versions it
// lacks (tokenize.Options.ReloadKeys, vault.Refresh), so a key version
// added on one node, or by `proxy keys rotate`, is used by the others
// within the watch lag, without a restart. A KEK rotation rewraps the
// keys without changing them and costs the other nodes no KEK call.
//
// # Metrics
//
// With Options.Registerer: tokenproxy_etcd_request_duration_seconds by op
// (view, update, commit, revision), tokenproxy_store_fresh (0 or 1),
// tokenproxy_store_freshness_age_seconds,
// tokenproxy_etcd_watch_restarts_total, tokenproxy_cluster_leader{task}
// (1 while this node leads the task: set by Lead, back to 0 when the
// leadership ends), tokenproxy_outbox_takeovers_total (dead nodes'
// outboxes this node claimed) and tokenproxy_outbox_takeover_records_total
// (their entries, counted when the emptied outbox is released: by then
// each reached this node's trail). No label holds a key.
//
// # Erasure
//
// etcd keeps every revision of a key until compaction. Wipe compacts the
// history to the current revision and defragments every member, so an
// erased record's ciphertext leaves the members' databases when Wipe
// returns. It stays in each member's write-ahead log and raft snapshot
// files until etcd purges them (by default after --snapshot-count
// entries, 10,000, and with --max-wals 5 files kept), which is the bound
// the runbook states; record-key rotation makes such leftovers
// unreadable. Compacting also makes views pinned to older revisions fail
// (ErrStore) and other nodes' watches restart with a cache drop.
//
// With RBAC (one etcd user per node, limited to the prefix) a node may
// neither compact nor defragment: only root may. Wipe then writes
// <prefix>wipe, and a maintenance job on each member's appliance
// (deploy/etcd/etcd-maintain.sh, with root's certificate) compacts and
// defragments within about a minute; test/integration measures it.
package etcdstore
