package proxy

import (
	"bytes"
	"errors"
	"strings"

	"github.com/shardproxy/shardproxy/internal/memcache"
)

// memcacheProtocol serves a Memcached pool: requests are parsed with
// package memcache, routed by key, and multi-key retrievals split per
// server.
type memcacheProtocol struct {
	pool *Pool
}

func newMemcacheProtocol(p *Pool) *memcacheProtocol { return &memcacheProtocol{pool: p} }

func (mp *memcacheProtocol) prelude(int) [][]byte { return nil }

func (mp *memcacheProtocol) healthCheck() ([]byte, *request) {
	return []byte("version\r\n"), &request{mcCmd: memcache.Version}
}

// appendError words a proxy-made error as twemproxy does:
// "SERVER_ERROR <reason>".
func (mp *memcacheProtocol) appendError(dst []byte, msg string) []byte {
	return memcache.AppendServerError(dst, msg)
}

type memcacheReplyParser struct {
	sc   memcache.ReplyScanner
	pool *Pool
}

func (mp *memcacheProtocol) newReplyParser() replyParser {
	return &memcacheReplyParser{pool: mp.pool}
}

// scan frames the reply to head by head's command, and decides there
// whether the client sees it: the proxy forwards noreply and quiet (q)
// requests as ordinary ones, so that every request has exactly one reply
// to match, and drops here what the client asked not to see.
func (p *memcacheReplyParser) scan(buf []byte, head *request) (int, error) {
	if head == nil {
		return 0, errUnexpectedReply
	}
	n, err := p.sc.Scan(buf, head.mcCmd)
	if err == memcache.ErrIncomplete {
		return 0, errIncomplete
	}
	if err != nil {
		if pe, ok := err.(*memcache.ProtocolError); ok {
			// "bad VALUE line in reply", without memcached's
			// SERVER_ERROR (the proxy's own error line adds it).
			return 0, errors.New(strings.TrimPrefix(pe.Reply, "SERVER_ERROR "))
		}
		return 0, err
	}
	if head.quiet && memcache.QuietSuppressed(head.mcCmd, buf[:n]) {
		head.silent = true
	}
	if head.silent && memcache.IsErrorReply(buf[:n]) {
		// The client asked not to hear back (noreply), so the failure
		// is only counted.
		p.pool.stats.noreplyErrors.Add(1)
	}
	return n, nil
}

func (p *memcacheReplyParser) need() int { return p.sc.Need() }

var (
	replyEnd = []byte("END\r\n")
	replyMN  = []byte("MN\r\n")
)

// handle parses and dispatches every complete request in data.
func (mp *memcacheProtocol) handle(s *session, data []byte) int {
	if s.mc == nil {
		s.mc = new(memcache.Request) // not before the first request: idle sessions stay small
	}
	off := 0
	for off < len(data) && !s.stop {
		if s.discard > 0 {
			// The rest of a data block memcached would swallow.
			d := min(s.discard, len(data)-off)
			s.discard -= d
			off += d
			continue
		}
		n, err := memcache.ParseRequest(data[off:], s.mc)
		if err == memcache.ErrIncomplete {
			s.need = s.mc.Need()
			return off + n
		}
		var pe *memcache.ProtocolError
		if errors.As(err, &pe) {
			// memcached's own reply; the connection goes on unless the
			// stream cannot be trusted any more: a line too long, or a
			// request in the binary protocol, whose reply is a binary
			// error response. Either way the replies to the requests
			// before it go first: this one is queued behind them.
			r := s.newRequest()
			s.reply(r, pe.AppendReply(r.reply[:0]))
			if pe.Close {
				s.stop = true
				return len(data)
			}
			skip := min(pe.Skip, len(data)-off)
			s.discard = pe.Skip - skip
			off += skip
			continue
		}
		if err != nil {
			r := s.newRequest()
			s.replyError(r, err.Error())
			s.stop = true
			return len(data)
		}
		s.cur, s.curRead = data[off:off+n], true
		off += n
		mp.dispatch(s, s.mc)
	}
	return off
}

// dispatch routes one request.
func (mp *memcacheProtocol) dispatch(s *session, req *memcache.Request) {
	r := s.newRequest()
	r.mcCmd = req.Command
	c := req.Command
	s.family, s.cmdName, s.key = noFamily, c.String(), req.DecodedKey()
	switch {
	case c.IsRetrieval():
		mp.retrieve(s, r, req)
	case c == memcache.MetaNoop:
		// Answered in order, after everything before it.
		s.reply(r, replyMN)
	case c == memcache.Quit:
		// memcached closes without a word, after the earlier replies.
		s.reply(r, nil)
		s.stop = true
	case c == memcache.Version:
		// twemproxy asks the server of the key "placeholder".
		mp.forward(s, r, []byte("placeholder"), nil, s.cur)
	case c.HasKey():
		mp.single(s, r, req)
	default:
		// With noreply the client reads no answer, not even this one.
		r.silent = req.Noreply
		s.replyError(r, "'"+string(req.Name)+"' is not supported through the proxy")
	}
}

// single forwards a one-key request to the server of its key. noreply and
// the meta q flag are taken off the wire (see memcacheReplyParser.scan):
// the line is rewritten, the data block goes as the client sent it.
func (mp *memcacheProtocol) single(s *session, r *request, req *memcache.Request) {
	switch {
	case req.Noreply:
		r.silent = true
		s.scratch = stripNoreply(s.scratch[:0], req.Line)
		mp.forward(s, r, req.DecodedKey(), s.scratch, req.Data)
	case req.Quiet:
		r.quiet = true
		s.scratch = memcache.StripQuiet(s.scratch[:0], req.Line)
		mp.forward(s, r, req.DecodedKey(), s.scratch, req.Data)
	default:
		mp.forward(s, r, req.DecodedKey(), nil, s.cur)
	}
}

// forward sends head (copied) then body (from the read buffer) to the
// server of key.
func (mp *memcacheProtocol) forward(s *session, r *request, key, head, body []byte) {
	srv := mp.pool.pick(key)
	if srv == nil {
		s.noServer(r)
		return
	}
	s.sendRead(srv.connFor(s), r, head, body)
}

// stripNoreply appends line without its final "noreply" word (and the
// spaces before it).
func stripNoreply(dst, line []byte) []byte {
	content := bytes.TrimRight(line, "\r\n")
	i := bytes.LastIndex(content, []byte("noreply"))
	if i < 0 {
		return append(dst, line...)
	}
	head := bytes.TrimRight(content[:i], " ")
	dst = append(dst, head...)
	return append(dst, "\r\n"...)
}

// retrieve serves get, gets, gat and gats: keys on one server go as the
// client sent them; otherwise one request per server (not per key), and
// the VALUE blocks are merged in the client's key order with one END.
func (mp *memcacheProtocol) retrieve(s *session, r *request, req *memcache.Request) {
	keys := req.Keys
	if len(keys) == 0 {
		s.reply(r, replyEnd) // "gat 10" with no key: memcached says END
		return
	}
	if !s.placeKeys(r, len(keys), func(i int) []byte { return keys[i] }) {
		return
	}

	r.merge = mergeValues
	for _, k := range keys {
		r.keyBuf = append(r.keyBuf, k...)
		r.keyEnd = append(r.keyEnd, int32(len(r.keyBuf)))
	}
	s.fanOut(r, s.keySrv, func(f *request, items []int32, buf []byte) []byte {
		f.mcCmd = req.Command
		fragKeys := s.fragKeys[:0]
		for _, j := range items {
			fragKeys = append(fragKeys, keys[j])
		}
		s.fragKeys = fragKeys
		if req.Command == memcache.Gat || req.Command == memcache.Gats {
			return memcache.AppendGat(buf, req.Name, req.Exptime, fragKeys...)
		}
		return memcache.AppendGet(buf, req.Name, fragKeys...)
	})
}

// mergeValues builds a split retrieval's reply: for each key in the
// client's order, its VALUE block if its server had it, then one END. A
// fragment's error fails the whole request with that error.
func mergeValues(p *request, dst []byte) []byte {
	for _, f := range p.frags {
		if memcache.IsErrorReply(f.reply) {
			return append(dst, f.reply...)
		}
	}
	for _, f := range p.frags {
		f.elems = f.elems[:0]
		f.cursor = 0
		err := memcache.ValueBlocks(f.reply, func(key, block []byte) {
			f.elems = append(f.elems, key, block)
		})
		if err != nil {
			return memcache.AppendServerError(dst, "bad reply from server for a fragment of a multi-key request")
		}
	}
	start := int32(0)
	for i, fi := range p.keyFrag {
		key := p.keyBuf[start:p.keyEnd[i]]
		start = p.keyEnd[i]
		f := p.frags[fi]
		if 2*f.cursor < len(f.elems) && bytes.Equal(f.elems[2*f.cursor], key) {
			dst = append(dst, f.elems[2*f.cursor+1]...)
			f.cursor++
		}
	}
	return memcache.AppendEnd(dst)
}
