package proxy

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shardproxy/shardproxy/internal/rediscmd"
	"github.com/shardproxy/shardproxy/internal/resp"
)

// CLIENT through a Redis pool is answered by the proxy about its own
// clients: a client's connection is to the proxy, and the servers' clients
// are the proxy's shared connections, so a server's CLIENT ID, SETNAME or
// LIST would describe (or change) the wrong connection. The proxy keeps
// what Redis keeps per client that a client can see: an id, a name, the
// library's name and version, the reply mode, when it connected and was
// last active, and its last command. CLIENT LIST and CLIENT KILL act on the
// clients of the pool the request came through. The subcommands about one
// server's state (PAUSE, TRACKING, …) are refused by the command table.

// replyMode is CLIENT REPLY's state.
type replyMode uint8

const (
	replyOn       replyMode = iota
	replyOff                // no reply until CLIENT REPLY ON
	replySkipNext           // the next command's reply is dropped
)

// clientState is what the proxy keeps of a Redis client for CLIENT, CLIENT
// REPLY and RESET.
type clientState struct {
	// Set before the session starts (admit); read-only afterwards.
	created int64 // monoNow at accept

	// Owned by the session reader.
	reply    replyMode
	last     *rediscmd.Command // the latest command resolved
	shownCmd *rediscmd.Command // last as published in cmd
	shownTx  int32             // txCount as published

	// Published by the reader once per read burst (publish), read by
	// other sessions' CLIENT LIST: per burst, not per request, so the
	// request path pays no atomic write.
	cmd     atomic.Pointer[rediscmd.Command]
	active  atomic.Int64 // monotonic ns of the latest read burst
	txCount atomic.Int32 // commands queued in MULTI plus one; 0 outside MULTI
	killed  atomic.Bool  // CLIENT KILL closed the connection
	db      atomic.Int32 // the selected database, stored at SELECT and RESET
	// The client's channels, patterns and shard channels, stored when
	// they change (redis_pubsub.go).
	subCount [3]atomic.Int32

	mu      sync.Mutex // guards the fields below: written by the reader, read by CLIENT LIST
	name    string
	libName string
	libVer  string
	noEvict bool
	noTouch bool
}

// subs publishes the client's subscription counts for CLIENT LIST.
func (c *clientState) subs(st *subState) {
	for kind := range st.set {
		c.subCount[kind].Store(int32(len(st.set[kind])))
	}
}

// errKilled ends a session closed by another client's CLIENT KILL.
var errKilled = errors.New("killed by CLIENT KILL")

// publish makes the reader's latest state visible to CLIENT LIST. It runs
// once per read burst; the clock is the burst's (s.now) when latency is
// measured, else the pool's coarse clock.
func (c *clientState) publish(s *session) {
	if c.last != c.shownCmd {
		c.shownCmd = c.last
		c.cmd.Store(c.last)
	}
	tx := int32(0)
	if s.inTx {
		tx = int32(min(len(s.tx.ends), 1<<30)) + 1
	}
	if tx != c.shownTx {
		c.shownTx = tx
		c.txCount.Store(tx)
	}
	now := s.now
	if now == 0 {
		now = s.pool().clock.Load()
	}
	c.active.Store(now)
}

// silence applies the reply mode to a new request: with CLIENT REPLY OFF,
// and for the one request after CLIENT REPLY SKIP, the reply is dropped
// (the request's silent flag, as for a Memcached noreply).
func (c *clientState) silence(r *request) {
	if c.reply == replyOn {
		return
	}
	r.silent = true
	if c.reply == replySkipNext {
		c.reply = replyOn
	}
}

var (
	replyReset = []byte("+RESET\r\n")
	replyRole  = []byte("*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n")
)

// client answers CLIENT <sub>; the table has already checked the argument
// count and refused the subcommands the proxy does not serve.
func (rp *redisProtocol) client(s *session, r *request, sub string, args [][]byte) {
	c := &s.client
	switch sub {
	case "id":
		s.reply(r, resp.AppendInteger(r.reply[:0], int64(s.id)))
	case "getname":
		c.mu.Lock()
		name := c.name
		c.mu.Unlock()
		if name == "" {
			s.reply(r, resp.AppendNullBulk(r.reply[:0]))
			return
		}
		s.reply(r, resp.AppendBulkString(r.reply[:0], name))
	case "setname":
		if !validClientAttr(args[2]) {
			s.replyError(r, "Client names cannot contain spaces, newlines or special characters.")
			return
		}
		c.mu.Lock()
		c.name = string(args[2])
		c.mu.Unlock()
		s.reply(r, replyOK)
	case "setinfo":
		rp.clientSetInfo(s, r, args)
	case "reply":
		switch {
		case rediscmd.EqualFold(args[2], "on"):
			c.reply = replyOn
			r.silent = false // ON is answered, after OFF or SKIP too
			s.reply(r, replyOK)
		case rediscmd.EqualFold(args[2], "off"):
			c.reply = replyOff
			r.silent = true
			s.reply(r, replyOK)
		case rediscmd.EqualFold(args[2], "skip"):
			if c.reply != replyOff {
				c.reply = replySkipNext
			}
			r.silent = true
			s.reply(r, replyOK)
		default:
			s.replyError(r, "syntax error")
		}
	case "no-evict", "no-touch":
		// Accepted and shown in CLIENT LIST's flags: the proxy evicts no
		// client, and touches no key for a client but through the
		// servers.
		var on bool
		switch {
		case rediscmd.EqualFold(args[2], "on"):
			on = true
		case rediscmd.EqualFold(args[2], "off"):
		default:
			s.replyError(r, "syntax error")
			return
		}
		c.mu.Lock()
		if sub == "no-evict" {
			c.noEvict = on
		} else {
			c.noTouch = on
		}
		c.mu.Unlock()
		s.reply(r, replyOK)
	case "info":
		text := rp.pool.appendClientLine(r.keyBuf[:0], s, s, monoNow())
		r.keyBuf = text
		s.reply(r, resp.AppendBulk(r.reply[:0], text))
	case "list":
		rp.clientList(s, r, args)
	case "kill":
		rp.clientKill(s, r, args)
	case "unblock":
		rp.clientUnblock(s, r, args)
	case "help":
		r.reply = resp.AppendArrayHeader(r.reply[:0], len(clientHelp))
		for _, ln := range clientHelp {
			r.reply = resp.AppendSimple(r.reply, ln)
		}
		s.reply(r, r.reply)
	default:
		// A Local row without a case here is a programming error; say so
		// rather than hang the client.
		s.replyError(r, "CLIENT "+strings.ToUpper(sub)+" is not served by this proxy")
	}
}

// clientHelp is CLIENT HELP's reply: Redis's lines for what the proxy
// serves, and what it refuses.
var clientHelp = []string{
	"CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
	"GETNAME",
	"    Return the name of the current connection.",
	"ID",
	"    Return the ID of the current connection.",
	"INFO",
	"    Return information about the current client connection.",
	"KILL <ip:port>",
	"    Kill connection made from <ip:port>.",
	"KILL <option> <value> [<option> <value> [...]]",
	"    Kill connections. Options are:",
	"    * ADDR (<ip:port>|<unixsocket>:0)",
	"      Kill connections made from the specified address",
	"    * LADDR (<ip:port>|<unixsocket>:0)",
	"      Kill connections made to specified local address",
	"    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
	"      Kill connections by type.",
	"    * USER <username>",
	"      Kill connections authenticated by <username>.",
	"    * SKIPME (YES|NO)",
	"      Skip killing current connection (default: yes).",
	"    * ID <client-id>",
	"      Kill connections by client id.",
	"LIST [options ...]",
	"    Return information about client connections. Options:",
	"    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
	"      Return clients of specified type.",
	"    * ID <client-id> [<client-id> ...]",
	"      Return clients with the specified IDs.",
	"REPLY (ON|OFF|SKIP)",
	"    Control the replies sent to the current connection.",
	"SETNAME <name>",
	"    Assign the name <name> to the current connection.",
	"SETINFO <LIB-NAME|LIB-VER> <value>",
	"    Set the library name or version of the current connection.",
	"NO-EVICT (ON|OFF)",
	"    Accepted; the proxy evicts no client.",
	"NO-TOUCH (ON|OFF)",
	"    Accepted.",
	"HELP",
	"    Print this help.",
	"Through shardproxy, CLIENT describes the proxy's clients of this pool.",
	"PAUSE, UNPAUSE, TRACKING, CACHING, GETREDIR, TRACKINGINFO and UNBLOCK",
	"act on one server and are refused: connect to the server directly.",
}

// clientSetInfo answers CLIENT SETINFO LIB-NAME|LIB-VER <value> (Redis
// 7.2): the value is kept for CLIENT LIST; an empty value clears it.
func (rp *redisProtocol) clientSetInfo(s *session, r *request, args [][]byte) {
	attr, val := args[2], args[3]
	var dst *string
	c := &s.client
	switch {
	case rediscmd.EqualFold(attr, "lib-name"):
		dst = &c.libName
	case rediscmd.EqualFold(attr, "lib-ver"):
		dst = &c.libVer
	default:
		s.replyError(r, "Unrecognized option '"+printable(attr)+"'")
		return
	}
	if !validClientAttr(val) {
		s.replyError(r, printable(attr)+" cannot contain spaces, newlines or special characters.")
		return
	}
	c.mu.Lock()
	*dst = string(val)
	c.mu.Unlock()
	s.reply(r, replyOK)
}

// validClientAttr is Redis's rule for client names and library names and
// versions: printable ASCII without spaces, so that CLIENT LIST's
// space-separated fields stay parseable.
func validClientAttr(b []byte) bool {
	for _, ch := range b {
		if ch < '!' || ch > '~' {
			return false
		}
	}
	return true
}

// resetClient answers RESET as Redis 7 does: the name, the reply mode,
// NO-EVICT and NO-TOUCH and an open transaction are dropped and, with
// redis_auth, the client must authenticate again; the library name and
// version stay (they still describe the client). The reply is +RESET.
func (rp *redisProtocol) resetClient(s *session, r *request) {
	c := &s.client
	if c.reply == replyOff {
		r.silent = false
	}
	c.reply = replyOn
	c.mu.Lock()
	c.name, c.noEvict, c.noTouch = "", false, false
	c.mu.Unlock()
	s.inTx = false
	s.leavePubSub() // RESET leaves subscribe mode, without confirmations
	if s.watching {
		// The watch stays on the server: the connection is closed when
		// it has answered, not reused.
		s.watching, s.pinClean = false, false
	}
	s.db = rp.pool.cfg.RedisDB
	c.db.Store(int32(s.db))
	if rp.auth != nil {
		s.authed = false
	}
	s.reply(r, replyReset)
}

// clientTime answers TIME from the proxy's clock: seconds and microseconds
// as two bulk strings.
func clientTime(s *session, r *request) {
	now := time.Now()
	var num [20]byte
	b := resp.AppendArrayHeader(r.reply[:0], 2)
	b = resp.AppendBulk(b, strconv.AppendInt(num[:0], now.Unix(), 10))
	b = resp.AppendBulk(b, strconv.AppendInt(num[:0], int64(now.Nanosecond()/1000), 10))
	s.reply(r, b)
}

// sessionsByID returns the pool's sessions, in the order they connected,
// but those already killed (they close as soon as the servers have answered
// what they sent).
func (p *Pool) sessionsByID() []*session {
	p.mu.Lock()
	list := make([]*session, 0, len(p.sessions))
	for s := range p.sessions {
		if !s.client.killed.Load() {
			list = append(list, s)
		}
	}
	p.mu.Unlock()
	slices.SortFunc(list, func(a, b *session) int { return cmp.Compare(a.id, b.id) })
	return list
}

// clientType is a client's type for CLIENT LIST and KILL's TYPE filters:
// a client of the proxy is a pubsub client while it has a subscription (as
// Redis's getClientType says), else a normal one.
type clientType int8

const (
	typeAny    clientType = iota
	typeNormal            // a client without subscriptions
	typePubSub            // a client with subscriptions
	typeOther             // master, replica: none
)

// typeOf returns t's type as CLIENT LIST shows it now.
func typeOf(t *session) clientType {
	c := &t.client
	if c.subCount[subChannel].Load()+c.subCount[subPattern].Load()+c.subCount[subShard].Load() > 0 {
		return typePubSub
	}
	return typeNormal
}

// parseClientType reads a TYPE filter's value as Redis's
// getClientTypeByName does.
func parseClientType(b []byte) (clientType, bool) {
	switch {
	case rediscmd.EqualFold(b, "normal"):
		return typeNormal, true
	case rediscmd.EqualFold(b, "pubsub"):
		return typePubSub, true
	case rediscmd.EqualFold(b, "slave"), rediscmd.EqualFold(b, "replica"), rediscmd.EqualFold(b, "master"):
		return typeOther, true
	}
	return typeAny, false
}

// clientList answers CLIENT LIST [TYPE type | ID id ...], with Redis 7.0's
// rules: one filter, the IDs' lines in the order asked.
func (rp *redisProtocol) clientList(s *session, r *request, args [][]byte) {
	p := rp.pool
	now := monoNow()
	text := r.keyBuf[:0]
	switch {
	case len(args) == 2:
		for _, t := range p.sessionsByID() {
			text = p.appendClientLine(text, t, s, now)
		}
	case len(args) == 4 && rediscmd.EqualFold(args[2], "type"):
		ty, ok := parseClientType(args[3])
		if !ok {
			s.replyError(r, "Unknown client type '"+printable(args[3])+"'")
			return
		}
		for _, t := range p.sessionsByID() {
			if typeOf(t) == ty {
				text = p.appendClientLine(text, t, s, now)
			}
		}
	case len(args) > 3 && rediscmd.EqualFold(args[2], "id"):
		byID := make(map[uint64]*session)
		for _, t := range p.sessionsByID() {
			byID[t.id] = t
		}
		for _, a := range args[3:] {
			id, ok := resp.ParseInt(a)
			if !ok {
				s.replyError(r, "Invalid client ID")
				return
			}
			if t := byID[uint64(id)]; t != nil && id > 0 {
				text = p.appendClientLine(text, t, s, now)
			}
		}
	default:
		s.replyError(r, "syntax error")
		return
	}
	r.keyBuf = text
	s.reply(r, resp.AppendBulk(r.reply[:0], text))
}

// killFilter is CLIENT KILL's filter form.
type killFilter struct {
	addr, laddr     string
	hasAddr, hasLad bool
	id              uint64
	ty              clientType
	skipMe          bool
}

// clientKill answers CLIENT KILL <ip:port> (+OK, or "No such client") and
// CLIENT KILL <filter> <value> … (the number killed), with Redis 7.0's
// rules, among the pool's clients. With the old form, or SKIPME no, a
// client may kill itself: it gets its reply, then the connection closes.
func (rp *redisProtocol) clientKill(s *session, r *request, args [][]byte) {
	f := killFilter{skipMe: true}
	if len(args) == 3 {
		f.addr, f.hasAddr, f.skipMe = string(args[2]), true, false
	} else {
		for i := 2; i < len(args); i += 2 {
			if i+1 >= len(args) {
				s.replyError(r, "syntax error")
				return
			}
			opt, val := args[i], args[i+1]
			switch {
			case rediscmd.EqualFold(opt, "id"):
				id, ok := resp.ParseInt(val)
				if !ok || id < 1 {
					s.replyError(r, "client-id should be greater than 0")
					return
				}
				f.id = uint64(id)
			case rediscmd.EqualFold(opt, "type"):
				ty, ok := parseClientType(val)
				if !ok {
					s.replyError(r, "Unknown client type '"+printable(val)+"'")
					return
				}
				f.ty = ty
			case rediscmd.EqualFold(opt, "addr"):
				f.addr, f.hasAddr = string(val), true
			case rediscmd.EqualFold(opt, "laddr"):
				f.laddr, f.hasLad = string(val), true
			case rediscmd.EqualFold(opt, "user"):
				// Every client of the proxy is Redis's default user.
				if string(val) != "default" {
					s.replyError(r, "No such user '"+printable(val)+"'")
					return
				}
			case rediscmd.EqualFold(opt, "skipme"):
				switch {
				case rediscmd.EqualFold(val, "yes"):
					f.skipMe = true
				case rediscmd.EqualFold(val, "no"):
					f.skipMe = false
				default:
					s.replyError(r, "syntax error")
					return
				}
			default:
				s.replyError(r, "syntax error")
				return
			}
		}
	}
	killed, self := 0, false
	for _, t := range rp.pool.sessionsByID() {
		if !f.match(t) || t == s && f.skipMe {
			continue
		}
		killed++
		if t == s {
			self = true
			continue
		}
		t.kill()
	}
	switch {
	case len(args) > 3:
		s.reply(r, resp.AppendInteger(r.reply[:0], int64(killed)))
	case killed == 0:
		s.replyError(r, "No such client")
	default:
		s.reply(r, replyOK)
	}
	if self {
		s.stop = true // closed once the reply is written, as after QUIT
	}
}

func (f *killFilter) match(t *session) bool {
	if f.id != 0 && t.id != f.id || f.ty != typeAny && f.ty != typeOf(t) {
		return false
	}
	if f.hasAddr || f.hasLad {
		addr, laddr := clientAddrs(t)
		if f.hasAddr && addr != f.addr || f.hasLad && laddr != f.laddr {
			return false
		}
	}
	return true
}

// kill closes a session for another client's CLIENT KILL, as Redis frees a
// client: what it has not been sent is dropped. Its reader wakes (a read
// deadline in the past) and stops; the session then waits for the
// replies the servers still owe (their requests point into it) and
// closes.
func (s *session) kill() {
	s.client.killed.Store(true)
	s.cancelBlock(cancelGone)
	s.mu.Lock()
	s.broken = true
	s.cond.Broadcast()
	s.mu.Unlock()
	now := time.Now()
	_ = s.conn.SetReadDeadline(now)
	_ = s.conn.SetWriteDeadline(now) // a write blocked on a client that does not read
}

// clientAddrs returns a client's addr and laddr as Redis shows them:
// ip:port, or for a unix socket the socket's path and ":0".
func clientAddrs(s *session) (addr, laddr string) {
	if ua, ok := s.conn.LocalAddr().(*net.UnixAddr); ok {
		a := ua.Name + ":0"
		return a, a
	}
	return s.conn.RemoteAddr().String(), s.conn.LocalAddr().String()
}

// fd returns the client socket's descriptor, or -1 once it is closed.
func (s *session) fd() int {
	n := -1
	_ = s.raw.rc.Control(func(fd uintptr) { n = int(fd) })
	return n
}

// appendClientLine appends t's CLIENT LIST line, in Redis 7.2's format:
// the fields that have no meaning in the proxy (buffers, subscriptions,
// memory) get the values of an idle Redis client. self is the session
// asking: its last command is the one running now.
func (p *Pool) appendClientLine(dst []byte, t, self *session, now int64) []byte {
	c := &t.client
	addr, laddr := clientAddrs(t)
	c.mu.Lock()
	name, libName, libVer, noEvict, noTouch := c.name, c.libName, c.libVer, c.noEvict, c.noTouch
	c.mu.Unlock()
	cmd, active, tx := c.cmd.Load(), c.active.Load(), c.txCount.Load()
	if t == self {
		cmd, active = c.last, now
	}
	cmdName := "NULL"
	if cmd != nil {
		cmdName = cmd.Name
	}
	var flags [5]byte
	fl := flags[:0]
	sub, psub, ssub := c.subCount[subChannel].Load(), c.subCount[subPattern].Load(), c.subCount[subShard].Load()
	if sub+psub+ssub > 0 {
		fl = append(fl, 'P')
	}
	if tx > 0 {
		fl = append(fl, 'x')
	}
	if t.blocked.Load() {
		fl = append(fl, 'b') // in a blocking command, after x as in Redis
	}
	if _, unix := t.conn.LocalAddr().(*net.UnixAddr); unix {
		fl = append(fl, 'U')
	}
	if noEvict {
		fl = append(fl, 'e')
	}
	if noTouch {
		fl = append(fl, 'T')
	}
	if len(fl) == 0 {
		fl = append(fl, 'N')
	}
	return fmt.Appendf(dst, "id=%d addr=%s laddr=%s fd=%d name=%s age=%d idle=%d flags=%s db=%d sub=%d psub=%d ssub=%d "+
		"multi=%d qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r "+
		"cmd=%s user=default redir=-1 resp=2 lib-name=%s lib-ver=%s\n",
		t.id, addr, laddr, t.fd(), name, max(0, (now-c.created)/1e9), max(0, (now-active)/1e9), fl, c.db.Load(),
		sub, psub, ssub, int(tx)-1, cmdName, libName, libVer)
}
