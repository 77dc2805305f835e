package proxy

import (
	"github.com/shardproxy/shardproxy/internal/rediscmd"
	"github.com/shardproxy/shardproxy/internal/resp"
)

// placeholderKey is rediscmd.PlaceholderKey as bytes. Read-only.
var placeholderKey = []byte(rediscmd.PlaceholderKey)

// mergeFunc builds a multi-key request's reply from its fragments' replies,
// appending it to dst. It runs once, when the last fragment is answered.
type mergeFunc func(parent *request, dst []byte) []byte

// single routes a command by its first key. Commands with several keys
// (SINTER, RENAME, EVAL, ...) must have them all on one server: twemproxy
// silently uses the first key's server and computes a wrong answer;
// shardproxy says so instead (a hash tag puts related keys together).
func (rp *redisProtocol) single(s *session, r *request, cmd *rediscmd.Command, args [][]byte) {
	if cmd.Flags.Has(rediscmd.Blocking) {
		// XREAD and XREADGROUP: with BLOCK, a blocking command.
		if timeout, blocks, err := cmd.BlockTimeout(args); blocks {
			if err != nil {
				rp.refuse(s, r, args, err)
				return
			}
			rp.block(s, r, cmd, args, timeout)
			return
		}
	}
	keys, err := cmd.KeyIndexes(args, s.idxs[:0])
	s.idxs = keys
	var key []byte
	switch {
	case err == nil && len(keys) > 0:
		key = args[keys[0]]
	case err == nil, rp.scriptsAnywhere && cmd.Script != rediscmd.NotScript && cmd.IsNoKeys(err):
		// No key (EVAL … 0 with script_no_keys: placeholder): any
		// server will do, the placeholder key's as for keyless commands.
		keys, key = keys[:0], placeholderKey
	default:
		s.reply(r, resp.AppendError(r.reply[:0], err.Error()))
		return
	}
	srv := rp.pool.pick(key)
	if srv == nil {
		s.noServer(r)
		return
	}
	for i := 1; i < len(keys); i++ {
		k := keys[i]
		if rp.pool.random {
			break // each key would go to a random server: use the first key's
		}
		if rp.pool.pick(args[k]) != srv {
			s.replyError(r, "keys of '"+cmd.Name+"' are on different servers; put them together with a hash tag")
			return
		}
	}
	b := srv.connFor(s)
	switch cmd.Script {
	case rediscmd.ScriptBody:
		rp.scripts.remember(args[cmd.FirstArg()])
	case rediscmd.ScriptSHA:
		rp.armRetry(s, r, b, args[cmd.FirstArg()])
	}
	s.sendCur(b, r)
}

// split splits MGET, DEL, UNLINK, TOUCH, EXISTS and MSET into one request
// per server (not per key) and merges the replies in key order.
func (rp *redisProtocol) split(s *session, r *request, cmd *rediscmd.Command, args [][]byte) {
	keys, err := cmd.KeyIndexes(args, s.idxs[:0])
	s.idxs = keys
	if err != nil {
		s.reply(r, resp.AppendError(r.reply[:0], err.Error()))
		return
	}
	// Where each key goes; one server for all means no split.
	if !s.placeKeys(r, len(keys), func(i int) []byte { return args[keys[i]] }) {
		return
	}

	// Arguments per key: MSET carries a value after each key.
	per := cmd.Keys.KeyStep
	if per < 1 {
		per = 1
	}
	r.merge = mergeFor(cmd.Merge)
	s.fanOut(r, s.keySrv, func(_ *request, items []int32, buf []byte) []byte {
		buf = resp.AppendArrayHeader(buf, 1+len(items)*per)
		buf = resp.AppendBulk(buf, args[0])
		for _, j := range items {
			for a := keys[j]; a < keys[j]+per; a++ {
				buf = resp.AppendBulk(buf, args[a])
			}
		}
		return buf
	})
}

func mergeFor(m rediscmd.Merge) mergeFunc {
	switch m {
	case rediscmd.MergeArray:
		return mergeArray
	case rediscmd.MergeSum:
		return mergeSum
	default:
		return mergeAllOK
	}
}

// fragmentError returns the first fragment's error reply, if any: a failed
// fragment fails the whole request with its real error.
func fragmentError(p *request) []byte {
	for _, f := range p.frags {
		if resp.IsError(f.reply) {
			return f.reply
		}
	}
	return nil
}

var errBadFragmentReply = []byte("-ERR bad reply from server for a fragment of a multi-key request\r\n")

// mergeArray: MGET's values in the client's key order.
func mergeArray(p *request, dst []byte) []byte {
	if e := fragmentError(p); e != nil {
		return append(dst, e...)
	}
	for _, f := range p.frags {
		var err error
		f.elems, err = resp.ArrayElements(f.reply, f.elems[:0])
		if err != nil {
			return append(dst, errBadFragmentReply...)
		}
	}
	dst = resp.AppendArrayHeader(dst, len(p.keyFrag))
	for i, fi := range p.keyFrag {
		elems := p.frags[fi].elems
		if int(p.keyPos[i]) >= len(elems) {
			return append(dst[:0], errBadFragmentReply...)
		}
		dst = append(dst, elems[p.keyPos[i]]...)
	}
	return dst
}

// mergeSum: DEL, UNLINK, TOUCH, EXISTS add up their counts.
func mergeSum(p *request, dst []byte) []byte {
	if e := fragmentError(p); e != nil {
		return append(dst, e...)
	}
	var sum int64
	for _, f := range p.frags {
		n, ok := resp.ParseInteger(f.reply)
		if !ok {
			return append(dst, errBadFragmentReply...)
		}
		sum += n
	}
	return resp.AppendInteger(dst, sum)
}

// mergeAllOK: MSET is OK when every fragment is.
func mergeAllOK(p *request, dst []byte) []byte {
	if e := fragmentError(p); e != nil {
		return append(dst, e...)
	}
	for _, f := range p.frags {
		if string(f.reply) != "+OK\r\n" {
			return append(dst, errBadFragmentReply...)
		}
	}
	return append(dst, replyOK...)
}

// placeKeys records in s.keySrv the server of each of the n keys of a
// multi-key request (key(i) is the i-th) and reports whether the request
// must be split. When no split is needed (every key on one server) it
// forwards the request as the client sent it; when a key has no live
// server it answers the error. Either way it then returns false.
func (s *session) placeKeys(r *request, n int, key func(i int) []byte) (split bool) {
	s.keySrv = s.keySrv[:0]
	var first *server
	for i := 0; i < n; i++ {
		srv := s.pool().pick(key(i))
		if srv == nil {
			s.noServer(r)
			return false
		}
		if first == nil {
			first = srv
		} else if srv != first {
			split = true
		}
		s.keySrv = append(s.keySrv, srv)
	}
	if !split {
		s.sendCur(first.connFor(s), r)
	}
	return split
}
