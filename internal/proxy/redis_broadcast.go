package proxy

import (
	"bytes"
	"net"
	"time"

	"github.com/shardproxy/shardproxy/internal/rediscmd"
	"github.com/shardproxy/shardproxy/internal/resp"
)

// broadcast sends a request that must reach every server (SCRIPT LOAD,
// SCRIPT FLUSH, FUNCTION LOAD, …) to each server in the ring, one fragment
// per server in the pool's server order, and merges the replies by
// cmd.Merge. An ejected server is left out: it holds no keys, and a script
// it lacks when it comes back is loaded on demand (redis_script.go).
func (rp *redisProtocol) broadcast(s *session, r *request, cmd *rediscmd.Command, args [][]byte) {
	live := rp.pool.liveServers(s.keySrv[:0])
	s.keySrv = live
	if len(live) == 0 {
		s.noServer(r)
		return
	}
	if cmd.Script == rediscmd.ScriptBody {
		rp.scripts.remember(args[cmd.FirstArg()])
	}
	r.merge = broadcastMerge(cmd.Merge)
	s.startFragments(r)
	defer s.endFragments(r)
	var alone []byte // the request, for the Interrupt connections
	for _, srv := range live {
		f := s.newFragment(r)
		if cmd.Flags.Has(rediscmd.Interrupt) {
			if alone == nil {
				alone = bytes.Clone(s.cur)
			}
			go rp.interrupt(f, srv, alone)
			continue
		}
		b := srv.connFor(s)
		b.enqueue(f, nil, s.cur, false)
		s.addDirty(b)
	}
}

func broadcastMerge(m rediscmd.Merge) mergeFunc {
	switch m {
	case rediscmd.MergeAnd:
		return mergeAnd
	case rediscmd.MergeAnyOK:
		return mergeAnyOK
	default:
		return mergeAll
	}
}

// mergeAll: every server must succeed; the first server's reply (the same
// SHA1 from each for SCRIPT LOAD, the library name for FUNCTION LOAD, +OK),
// else the first error in server order. A server's error does not undo
// what the others did: SCRIPT LOAD and FUNCTION LOAD may then be repeated.
func mergeAll(p *request, dst []byte) []byte {
	if e := fragmentError(p); e != nil {
		return append(dst, e...)
	}
	return append(dst, p.frags[0].reply...)
}

// mergeAnd: SCRIPT EXISTS answers 1 for a script only where every server
// has it, so that 1 means an EVALSHA of it will not meet -NOSCRIPT.
func mergeAnd(p *request, dst []byte) []byte {
	if e := fragmentError(p); e != nil {
		return append(dst, e...)
	}
	n := -1
	for _, f := range p.frags {
		var err error
		f.elems, err = resp.ArrayElements(f.reply, f.elems[:0])
		if err != nil || n >= 0 && len(f.elems) != n {
			return append(dst, errBadFragmentReply...)
		}
		n = len(f.elems)
	}
	dst = resp.AppendArrayHeader(dst, n)
	for i := range n {
		all := int64(1)
		for _, f := range p.frags {
			v, ok := resp.ParseInteger(f.elems[i])
			if !ok {
				return append(dst[:0], errBadFragmentReply...)
			}
			if v == 0 {
				all = 0
			}
		}
		dst = resp.AppendInteger(dst, all)
	}
	return dst
}

// notBusyPrefix starts Redis's reply to SCRIPT KILL and FUNCTION KILL on a
// server that runs no script: "-NOTBUSY No scripts in execution right now."
var notBusyPrefix = []byte("-NOTBUSY")

// mergeAnyOK: SCRIPT KILL and FUNCTION KILL are +OK if any server killed a
// script; the others answer -NOTBUSY. With no +OK, the first error other
// than -NOTBUSY (a server that could not be asked may be the busy one, or
// a script that cannot be killed: -UNKILLABLE), else -NOTBUSY.
func mergeAnyOK(p *request, dst []byte) []byte {
	var notBusy, other []byte
	for _, f := range p.frags {
		switch {
		case string(f.reply) == "+OK\r\n":
			return append(dst, replyOK...)
		case bytes.HasPrefix(f.reply, notBusyPrefix):
			if notBusy == nil {
				notBusy = f.reply
			}
		case other == nil:
			other = f.reply
		}
	}
	switch {
	case other != nil && resp.IsError(other):
		return append(dst, other...)
	case other != nil:
		return append(dst, errBadFragmentReply...)
	}
	return append(dst, notBusy...)
}

// interruptTimeout bounds an Interrupt request's connection: dialling,
// and waiting for the reply, which a server busy with a script sends only
// once it looks at its other clients (after busy-reply-threshold, 5 s by
// default). A longer pool timeout is used instead.
const interruptTimeout = 10 * time.Second

// interrupt sends req (SCRIPT KILL, FUNCTION KILL) to srv on a connection of
// its own and completes f with the reply. A server running a script does
// not read the connection the script came from, and every client of the
// pool shares that connection (server_connections), so a kill sent there
// would wait for the very script it is meant to stop.
func (rp *redisProtocol) interrupt(f *request, srv *server, req []byte) {
	p := rp.pool
	reply, err := rp.sendAlone(srv, req, max(p.cfg.Timeout, interruptTimeout))
	if err != nil {
		p.logger.Info("kill request failed", "server", srv.name, "err", err)
		f.reply = p.proto.appendError(f.reply[:0], errorText(err))
	} else {
		f.reply = append(f.reply[:0], reply...)
	}
	if f.sess.complete(f) {
		f.sess.deliver()
	}
}

// sendAlone dials srv, sends the pool's prelude (AUTH, SELECT) and req, and
// returns req's reply. Everything must happen within timeout.
func (rp *redisProtocol) sendAlone(srv *server, req []byte, timeout time.Duration) ([]byte, error) {
	a := srv.addr.Load()
	if a == nil {
		return nil, errNoMaster
	}
	conn, err := net.DialTimeout(a.Network, a.String(), timeout)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return nil, err
	}
	var out []byte
	for _, pre := range rp.pool.prelude {
		out = append(out, pre...)
	}
	out = append(out, req...)
	if _, err := conn.Write(out); err != nil {
		return nil, err
	}
	// The prelude's replies, then req's.
	var sc resp.ReplyScanner
	buf := make([]byte, 0, 512)
	off := 0
	for left := len(rp.pool.prelude) + 1; ; {
		n, err := sc.Scan(buf[off:])
		if err == nil {
			left--
			if left == 0 {
				return buf[off : off+n], nil
			}
			off += n
			continue
		}
		if err != resp.ErrIncomplete {
			return nil, err
		}
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		m, err := conn.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err != nil && m == 0 {
			return nil, err
		}
	}
}
