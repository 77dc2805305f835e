package hashkit

// lookupRandom is random_dispatch: twemproxy keeps one slot per live server
// in configuration order (weights ignored) and takes slot random() % nlive.
// Here the draw n comes from the caller (Spec.Rand via Pick), so the ring
// itself holds no mutable random state: twemproxy's single global random()
// becomes a source the proxy chooses, e.g. math/rand/v2's per-thread
// generator, with no cache line shared by every request.
func (r *Ring) lookupRandom(n uint32) int {
	if len(r.liveIdx) == 0 {
		return -1
	}
	return int(r.liveIdx[n%uint32(len(r.liveIdx))])
}
