package proxy

import (
	"bytes"
	"cmp"
	"slices"
	"strings"

	"github.com/shardproxy/shardproxy/internal/rediscmd"
	"github.com/shardproxy/shardproxy/internal/resp"
)

// Pub/sub through the proxy, with Redis's semantics and RESP2 replies:
//
//   - A channel (and a shard channel) lives on the server its name hashes
//     to, with the pool's hash, distribution and hash tag, so PUBLISH and
//     SUBSCRIBE of one channel meet. A keyspace notification channel
//     __keyspace@<db>__:<key> is placed by its key, where the server that
//     holds the key publishes it. Patterns, and __keyevent@<db>__:<event>
//     channels (every server publishes them), are subscribed on every
//     server.
//   - The subscriptions are the pool's, on one connection per server
//     (pubsub_conn.go); each client's own subscriptions, and the counts in
//     its confirmations, are kept here, in its session.
//   - A (P|S)SUBSCRIBE is answered once the server has confirmed every
//     subscription it had to make: a client that publishes after its
//     confirmation gets the message.

// subState is a client's subscriptions. Owned by the session reader.
type subState struct {
	// Each kind's names, with the order they were subscribed in (an
	// UNSUBSCRIBE without names answers in that order).
	set [3]map[string]uint64
	seq uint64
}

// count is the number Redis puts in a confirmation: channels and patterns
// together, shard channels on their own.
func (st *subState) count(kind subKind) int {
	if kind == subShard {
		return len(st.set[subShard])
	}
	return len(st.set[subChannel]) + len(st.set[subPattern])
}

// total counts every subscription: a client with any is in subscribe mode.
func (st *subState) total() int {
	return len(st.set[0]) + len(st.set[1]) + len(st.set[2])
}

// sorted returns kind's names in subscription order.
func (st *subState) sorted(kind subKind) []string {
	names := make([]string, 0, len(st.set[kind]))
	for n := range st.set[kind] {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int { return cmp.Compare(st.set[kind][a], st.set[kind][b]) })
	return names
}

// inSubscribeMode reports whether the client has a subscription: it may
// then only send (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PING, QUIT and RESET.
func (s *session) inSubscribeMode() bool { return s.sub != nil && s.sub.total() > 0 }

// allowedSubscribed reports whether a subscribed client may send cmd (Redis
// 7's list, processCommand).
func allowedSubscribed(cmd *rediscmd.Command) bool {
	switch cmd.Name {
	case "subscribe", "psubscribe", "ssubscribe", "unsubscribe", "punsubscribe", "sunsubscribe", "ping", "quit", "reset":
		return true
	}
	return false
}

// refuseSubscribed answers a command a subscribed client may not send, in
// Redis 7's words.
func refuseSubscribed(s *session, r *request, cmd *rediscmd.Command) {
	s.reply(r, resp.AppendError(r.reply[:0], "ERR Can't execute '"+cmd.Name+
		"': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"))
}

// pubsub serves the PubSub commands.
func (rp *redisProtocol) pubsub(s *session, r *request, cmd *rediscmd.Command, args [][]byte) {
	switch cmd.Name {
	case "subscribe":
		rp.subscribe(s, r, subChannel, args[1:])
	case "psubscribe":
		rp.subscribe(s, r, subPattern, args[1:])
	case "ssubscribe":
		rp.subscribe(s, r, subShard, args[1:])
	case "unsubscribe":
		rp.unsubscribe(s, r, subChannel, args[1:])
	case "punsubscribe":
		rp.unsubscribe(s, r, subPattern, args[1:])
	case "sunsubscribe":
		rp.unsubscribe(s, r, subShard, args[1:])
	case "publish", "spublish":
		// The channel's server answers with its receiver count: this
		// proxy's subscriber connection counts as one receiver there.
		rp.forward(s, r, channelKey(args[1]))
	case "pubsub":
		rp.pubsubInfo(s, r, args)
	default:
		s.replyError(r, "unknown or unsupported command '"+string(args[0])+"'")
	}
}

// channelKey returns what a channel is placed by: the key of a keyspace
// notification channel (__keyspace@0__:user:1 is published by the server
// of user:1), else the channel's name.
func channelKey(ch []byte) []byte {
	const prefix = "__keyspace@"
	if !bytes.HasPrefix(ch, []byte(prefix)) {
		return ch
	}
	if i := bytes.Index(ch[len(prefix):], []byte("__:")); i >= 0 {
		return ch[len(prefix)+i+3:]
	}
	return ch
}

// everywhere reports whether a channel is published by every server: a
// keyevent notification channel.
func everywhere(ch string) bool { return strings.HasPrefix(ch, "__keyevent@") }

// subServers returns the servers a subscription is made on.
func (h *pubsubHub) subServers(key subKey) []*server {
	p := h.pool
	if key.kind == subPattern || everywhere(key.name) {
		return p.servers
	}
	if srv := p.pick(channelKey([]byte(key.name))); srv != nil {
		return []*server{srv}
	}
	return nil // no live server: the subscription waits in the proxy alone
}

// appendSubReply appends Redis's confirmation: [verb, name, count].
func appendSubReply(dst []byte, verb string, name []byte, null bool, count int) []byte {
	dst = resp.AppendArrayHeader(dst, 3)
	dst = resp.AppendBulkString(dst, verb)
	if null {
		dst = resp.AppendNullBulk(dst)
	} else {
		dst = resp.AppendBulk(dst, name)
	}
	return resp.AppendInteger(dst, int64(count))
}

// subscribe answers (P|S)SUBSCRIBE: one confirmation per name, each with
// the client's count after it, sent once the servers confirmed the
// subscriptions the pool did not have yet.
func (rp *redisProtocol) subscribe(s *session, r *request, kind subKind, names [][]byte) {
	if s.sub == nil {
		s.sub = new(subState)
	}
	st := s.sub
	if st.set[kind] == nil {
		st.set[kind] = make(map[string]uint64)
	}
	h := rp.pool.pubsub
	w := &subWait{s: s, r: r, pending: 1} // 1: held while the request is built
	b := r.reply[:0]
	h.mu.Lock()
	for _, n := range names {
		name := string(n)
		if _, ok := st.set[kind][name]; !ok {
			st.seq++
			st.set[kind][name] = st.seq
			h.join(s, subKey{kind, name}, w)
		}
		b = appendSubReply(b, subVerbs[kind].sub, n, false, st.count(kind))
	}
	r.reply = b
	w.pending--
	done := w.pending == 0
	h.unlock()
	s.client.subs(st)
	if done {
		s.mu.Lock()
		s.finish(r)
		s.mu.Unlock()
	}
}

// join adds s to key's clients; the first one subscribes the servers. w
// waits for the confirmations outstanding. h.mu must be held.
func (h *pubsubHub) join(s *session, key subKey, w *subWait) {
	e := h.entries[key]
	if e == nil {
		e = &subEntry{clients: make(map[*session]struct{}), srvs: h.subServers(key)}
		h.entries[key] = e
	}
	first := len(e.clients) == 0
	e.clients[s] = struct{}{}
	for _, srv := range e.srvs {
		c := h.connLocked(srv)
		if first {
			c.want(key, w)
		} else if u := c.subs[key]; u != nil {
			c.attach(u, w)
		}
	}
}

// leave removes s from key's clients; the last one unsubscribes the
// servers. h.mu must be held.
func (h *pubsubHub) leave(s *session, key subKey) {
	e := h.entries[key]
	if e == nil {
		return
	}
	delete(e.clients, s)
	if len(e.clients) > 0 {
		return
	}
	delete(h.entries, key)
	for _, srv := range e.srvs {
		if c := h.conns[srv]; c != nil {
			c.unwant(key)
		}
	}
}

// unsubscribe answers (P|S)UNSUBSCRIBE: one confirmation per name (every
// name of the kind when none is given), each with the client's count
// after it. The servers are unsubscribed without waiting.
func (rp *redisProtocol) unsubscribe(s *session, r *request, kind subKind, names [][]byte) {
	st := s.sub
	if st == nil {
		st = new(subState)
	}
	verb := subVerbs[kind].unsub
	b := r.reply[:0]
	h := rp.pool.pubsub
	if len(names) == 0 {
		all := st.sorted(kind)
		if len(all) == 0 {
			b = appendSubReply(b, verb, nil, true, st.count(kind))
		}
		h.mu.Lock()
		for _, name := range all {
			delete(st.set[kind], name)
			h.leave(s, subKey{kind, name})
			b = appendSubReply(b, verb, []byte(name), false, st.count(kind))
		}
		h.unlock()
	} else {
		h.mu.Lock()
		for _, n := range names {
			if _, ok := st.set[kind][string(n)]; ok {
				delete(st.set[kind], string(n))
				h.leave(s, subKey{kind, string(n)})
			}
			b = appendSubReply(b, verb, n, false, st.count(kind))
		}
		h.unlock()
	}
	s.client.subs(st)
	s.reply(r, b)
}

// leavePubSub drops every subscription of the client: it closed, or sent
// RESET.
func (s *session) leavePubSub() {
	st := s.sub
	if st == nil || st.total() == 0 {
		return
	}
	h := s.pool().pubsub
	h.mu.Lock()
	for kind := range st.set {
		for name := range st.set[kind] {
			h.leave(s, subKey{subKind(kind), name})
		}
		clear(st.set[kind])
	}
	h.unlock()
	s.client.subs(st)
}

// pingSubscribed answers PING in subscribe mode as Redis does: the array
// ["pong", message], message empty when none is given.
func pingSubscribed(s *session, r *request, args [][]byte) {
	b := resp.AppendArrayHeader(r.reply[:0], 2)
	b = resp.AppendBulkString(b, "pong")
	if len(args) > 1 {
		b = resp.AppendBulk(b, args[1])
	} else {
		b = resp.AppendBulkString(b, "")
	}
	s.reply(r, b)
}

// pubsubInfo answers PUBSUB: CHANNELS and SHARDCHANNELS are the union of
// every server's; NUMSUB and SHARDNUMSUB give each channel's count from
// its server (summed over servers for a keyevent channel); NUMPAT is the
// largest server's count (patterns through the proxy are on every
// server). Other subcommands (HELP, an unknown one) get one server's
// reply.
func (rp *redisProtocol) pubsubInfo(s *session, r *request, args [][]byte) {
	var merge mergeFunc
	switch {
	case rediscmd.EqualFold(args[1], "channels"), rediscmd.EqualFold(args[1], "shardchannels"):
		merge = mergeUnion
	case rediscmd.EqualFold(args[1], "numsub"), rediscmd.EqualFold(args[1], "shardnumsub"):
		merge = mergeNumsub
	case rediscmd.EqualFold(args[1], "numpat"):
		merge = mergeMaxInt
	default:
		rp.forward(s, r, []byte(rediscmd.PlaceholderKey))
		return
	}
	live := rp.pool.liveServers(s.keySrv[:0])
	s.keySrv = live
	if len(live) == 0 {
		s.noServer(r)
		return
	}
	// NUMSUB: which fragment (server) answers for each channel, -1 to sum.
	r.keyFrag = r.keyFrag[:0]
	if rediscmd.EqualFold(args[1], "numsub") || rediscmd.EqualFold(args[1], "shardnumsub") {
		for _, ch := range args[2:] {
			at := int32(-1)
			if !everywhere(string(ch)) {
				if srv := rp.pool.pick(channelKey(ch)); srv != nil {
					at = int32(slices.Index(live, srv))
				}
			}
			r.keyFrag = append(r.keyFrag, at)
		}
	}
	r.merge = merge
	s.startFragments(r)
	defer s.endFragments(r)
	for _, srv := range live {
		f := s.newFragment(r)
		b := srv.connFor(s)
		b.enqueue(f, nil, s.cur, false)
		s.addDirty(b)
	}
}

// fragmentArrays splits every fragment's array reply into its elements
// (f.elems); it returns an error reply to send instead, or nil.
func fragmentArrays(p *request) []byte {
	if e := fragmentError(p); e != nil {
		return e
	}
	for _, f := range p.frags {
		var err error
		if f.elems, err = resp.ArrayElements(f.reply, f.elems[:0]); err != nil {
			return errBadFragmentReply
		}
	}
	return nil
}

// mergeUnion: PUBSUB CHANNELS, the channels of every server, each once, in
// server order.
func mergeUnion(p *request, dst []byte) []byte {
	if e := fragmentArrays(p); e != nil {
		return append(dst, e...)
	}
	seen := make(map[string]bool)
	var out [][]byte
	for _, f := range p.frags {
		for _, e := range f.elems {
			if !seen[string(e)] {
				seen[string(e)] = true
				out = append(out, e)
			}
		}
	}
	dst = resp.AppendArrayHeader(dst, len(out))
	for _, e := range out {
		dst = append(dst, e...)
	}
	return dst
}

// mergeNumsub: PUBSUB NUMSUB, each channel's count from its server (see
// keyFrag), or the sum over servers.
func mergeNumsub(p *request, dst []byte) []byte {
	if e := fragmentArrays(p); e != nil {
		return append(dst, e...)
	}
	n := len(p.keyFrag)
	for _, f := range p.frags {
		if len(f.elems) != 2*n {
			return append(dst, errBadFragmentReply...)
		}
	}
	dst = resp.AppendArrayHeader(dst, 2*n)
	for i, at := range p.keyFrag {
		var sum int64
		for j, f := range p.frags {
			if at >= 0 && int32(j) != at {
				continue
			}
			v, ok := resp.ParseInteger(f.elems[2*i+1])
			if !ok {
				return append(dst[:0], errBadFragmentReply...)
			}
			sum += v
		}
		dst = append(dst, p.frags[0].elems[2*i]...)
		dst = resp.AppendInteger(dst, sum)
	}
	return dst
}

// mergeMaxInt: PUBSUB NUMPAT, the largest server's count.
func mergeMaxInt(p *request, dst []byte) []byte {
	if e := fragmentError(p); e != nil {
		return append(dst, e...)
	}
	var most int64
	for _, f := range p.frags {
		v, ok := resp.ParseInteger(f.reply)
		if !ok {
			return append(dst, errBadFragmentReply...)
		}
		most = max(most, v)
	}
	return resp.AppendInteger(dst, most)
}
