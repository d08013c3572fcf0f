package etcdstore

// Crash ends s as a killed process would: no more keep-alives and no
// revoke, so its lease, its registration and its claims end only after
// the lease TTL, and its outbox stays as it was.
func Crash(s *Store) {
	if s.closed.Swap(true) {
		return
	}
	s.stop()
	if sess := s.session.Load(); sess != nil {
		sess.Orphan()
	}
	s.cli.Close()
	s.wg.Wait()
}
