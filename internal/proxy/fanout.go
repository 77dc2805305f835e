package proxy

// fanOut is the one way a request is split over servers: srvs[i] is the
// server of the request's i-th item (a key of MGET or MSET, a key of a
// memcached multi-get, a command of a transaction split over servers).
// Each server that has items gets one fragment of parent — servers in the
// order of their first item, a server's items in the client's order — and
// parent.keyFrag[i], parent.keyPos[i] record which fragment carries item i
// and where in it, for the merge. build appends a fragment's bytes for its
// items (indexes into srvs) to dst, and may set the fragment's fields;
// fanOut sends them on the session's connection to that server, but for a
// transaction under WATCH split over servers (parent.hold): only the
// watched server's fragment is sent, the others wait in the hold.
func (s *session) fanOut(parent *request, srvs []*server, build func(f *request, items []int32, dst []byte) []byte) {
	parent.keyFrag, parent.keyPos = parent.keyFrag[:0], parent.keyPos[:0]
	for range srvs {
		parent.keyFrag = append(parent.keyFrag, -1)
		parent.keyPos = append(parent.keyPos, 0)
	}
	s.startFragments(parent)
	defer s.endFragments(parent)
	for i, srv := range srvs {
		if parent.keyFrag[i] >= 0 {
			continue
		}
		f := s.newFragment(parent)
		fi := int32(len(parent.frags) - 1)
		items := s.items[:0]
		for j := i; j < len(srvs); j++ {
			if srvs[j] == srv {
				parent.keyFrag[j], parent.keyPos[j] = fi, int32(len(items))
				items = append(items, int32(j))
			}
		}
		s.items = items
		s.scratch = build(f, items, s.scratch[:0])
		if h := parent.hold; h != nil {
			if srv != h.watched {
				h.keep(s, srv.connFor(s), f, s.scratch)
				continue
			}
			f.hold, h.first = h, f
		}
		s.sendScratch(srv.connFor(s), f)
	}
}
