package proxy

import (
	"bytes"
	"errors"
	"strconv"
	"strings"

	"github.com/shardproxy/shardproxy/internal/config"
	"github.com/shardproxy/shardproxy/internal/rediscmd"
	"github.com/shardproxy/shardproxy/internal/resp"
)

// redisProtocol serves a Redis pool: requests are parsed with package resp
// and routed by the command table of package rediscmd.
type redisProtocol struct {
	pool     *Pool
	auth     []byte         // redis_auth, or nil
	versions serverVersions // the servers' redis_version, for INFO
	// scriptsAnywhere: script_no_keys is placeholder, so EVAL, EVALSHA
	// and FCALL without keys run on the server of the placeholder key.
	scriptsAnywhere bool
	scripts         *scriptCache // the bodies of the scripts clients sent
}

func newRedisProtocol(p *Pool) *redisProtocol {
	rp := &redisProtocol{
		pool:            p,
		scriptsAnywhere: p.cfg.ScriptNoKeys == config.ScriptNoKeysPlaceholder,
		scripts:         newScriptCache(scriptCacheBytes, scriptCacheCount),
	}
	if p.cfg.RedisAuth != "" {
		rp.auth = []byte(p.cfg.RedisAuth)
	}
	return rp
}

// prelude: AUTH before SELECT (twemproxy sends SELECT first, which a server
// with a password refuses).
func (rp *redisProtocol) prelude(db int) [][]byte {
	var pre [][]byte
	if rp.auth != nil {
		pre = append(pre, resp.AppendCommand(nil, []byte("AUTH"), rp.auth))
	}
	if db != 0 {
		pre = append(pre, resp.AppendCommand(nil, []byte("SELECT"), []byte(strconv.Itoa(db))))
	}
	return pre
}

func (rp *redisProtocol) healthCheck() ([]byte, *request) {
	return []byte("PING\r\n"), &request{}
}

func (rp *redisProtocol) appendError(dst []byte, msg string) []byte {
	return resp.AppendError(dst, "ERR "+msg)
}

type redisReplyParser struct{ sc resp.ReplyScanner }

func (rp *redisProtocol) newReplyParser() replyParser {
	return &redisReplyParser{sc: resp.ReplyScanner{MaxLine: maxReplyLine}}
}

func (p *redisReplyParser) scan(buf []byte, _ *request) (int, error) {
	n, err := p.sc.Scan(buf)
	if err == resp.ErrIncomplete {
		return 0, errIncomplete
	}
	if pe, ok := err.(*resp.ProtocolError); ok {
		return 0, errors.New(pe.Msg) // "unknown reply type 't'", without "Protocol error: "
	}
	return n, err
}

func (p *redisReplyParser) need() int { return p.sc.Need() }

// handle parses and dispatches every complete request in data, then
// publishes what CLIENT LIST shows of the client (once per read burst).
func (rp *redisProtocol) handle(s *session, data []byte) int {
	n := rp.handleRequests(s, data)
	s.client.publish(s)
	return n
}

func (rp *redisProtocol) handleRequests(s *session, data []byte) int {
	if s.parsed == nil {
		s.parsed = new(resp.Request) // not before the first request: idle sessions stay small
	}
	off := 0
	for off < len(data) && !s.stop && !s.blocked.Load() {
		n, err := resp.ParseRequest(data[off:], s.parsed)
		if err == resp.ErrIncomplete {
			s.need = s.parsed.Need()
			return off + n
		}
		if err != nil {
			// Redis answers a malformed request and closes the connection:
			// the stream cannot be trusted past it.
			r := s.newRequest()
			s.client.silence(r) // CLIENT REPLY OFF silences this one too, as in Redis
			s.reply(r, resp.AppendError(nil, "ERR "+err.Error()))
			s.stop = true
			return len(data)
		}
		if s.parsed.Inline {
			// Servers get multibulk only: the inline quoting rules are
			// undone once, here.
			s.scratch = resp.AppendCommand(s.scratch[:0], s.parsed.Args...)
			s.cur, s.curRead = s.scratch, false
		} else {
			s.cur, s.curRead = data[off:off+n], true
		}
		off += n
		rp.dispatch(s, s.parsed.Args)
	}
	return off
}

var (
	replyOK   = []byte("+OK\r\n")
	replyPong = []byte("+PONG\r\n")
)

// dispatch routes one request.
func (rp *redisProtocol) dispatch(s *session, args [][]byte) {
	if s.pinned != nil && !s.watching {
		s.maybeUnpin() // the watch is over: back to the shared connections once answered
	}
	r := s.newRequest()
	s.client.silence(r) // CLIENT REPLY OFF or SKIP
	cmd, err := rediscmd.Resolve(args)
	if cmd != nil {
		s.client.last = cmd
	}
	if err != nil {
		if s.inTx {
			rp.queueTx(s, r, args, cmd, err)
			return
		}
		if s.sub != nil && errors.Is(err, rediscmd.ErrUnsupported) && s.inSubscribeMode() {
			refuseSubscribed(s, r, cmd) // Redis knows the command, and refuses it in this context
			return
		}
		rp.refuse(s, r, args, err)
		return
	}
	s.family, s.cmdName, s.key = uint8(cmd.Family), cmd.Name, nil
	if k := cmd.Keys.FirstKey; k > 0 && k < len(args) {
		s.key = args[k]
	}
	if rp.auth != nil && !s.authed && cmd.Name != "auth" && cmd.Name != "quit" && cmd.Name != "reset" {
		if s.inTx {
			s.tx.failed = true
		}
		s.reply(r, replyNoAuth)
		return
	}
	if s.inTx {
		rp.queueTx(s, r, args, cmd, nil)
		return
	}
	if s.sub != nil && !allowedSubscribed(cmd) && s.inSubscribeMode() {
		refuseSubscribed(s, r, cmd)
		return
	}
	switch cmd.Kind {
	case rediscmd.Local:
		rp.local(s, r, cmd, args)
	case rediscmd.Keyless:
		rp.forward(s, r, []byte(rediscmd.PlaceholderKey))
	case rediscmd.SingleKey:
		rp.single(s, r, cmd, args)
	case rediscmd.MultiKey:
		rp.split(s, r, cmd, args)
	case rediscmd.Broadcast:
		rp.broadcast(s, r, cmd, args)
	case rediscmd.Block:
		rp.blocking(s, r, cmd, args)
	case rediscmd.PubSub:
		rp.pubsub(s, r, cmd, args) // redis_pubsub.go
	}
}

// blocking answers a blocking command (redis_block.go), or refuses its
// timeout with Redis's words.
func (rp *redisProtocol) blocking(s *session, r *request, cmd *rediscmd.Command, args [][]byte) {
	timeout, _, err := cmd.BlockTimeout(args)
	if err != nil {
		rp.refuse(s, r, args, err)
		return
	}
	rp.block(s, r, cmd, args, timeout)
}

// twemproxy's wording (Redis adds a full stop).
var replyNoAuth = []byte("-NOAUTH Authentication required\r\n")

// refuse answers a request the table rejects. Redis's own words are kept for
// arity and key errors; an unknown or unsupported command is answered in
// one recognisable form, with the reason when there is one, and the
// connection stays usable (twemproxy closes it).
func (rp *redisProtocol) refuse(s *session, r *request, args [][]byte, err error) {
	var msg string
	switch {
	case errors.Is(err, rediscmd.ErrUnsupported):
		msg = strings.Replace(err.Error(), "ERR unsupported command", "ERR unknown or unsupported command", 1)
	default:
		msg = err.Error()
	}
	s.reply(r, resp.AppendError(r.reply[:0], msg))
}

// printable cuts a client-supplied name for an error reply.
func printable(b []byte) string {
	if len(b) > 128 {
		b = b[:128]
	}
	return string(b)
}

// local answers the commands the proxy serves itself.
func (rp *redisProtocol) local(s *session, r *request, cmd *rediscmd.Command, args [][]byte) {
	if sub, ok := strings.CutPrefix(cmd.Name, "client|"); ok {
		rp.client(s, r, sub, args) // redis_client.go
		return
	}
	switch cmd.Name {
	case "ping":
		if s.inSubscribeMode() {
			pingSubscribed(s, r, args)
			return
		}
		if len(args) > 1 {
			s.reply(r, resp.AppendBulk(r.reply[:0], args[1]))
			return
		}
		s.reply(r, replyPong)
	case "echo":
		s.reply(r, resp.AppendBulk(r.reply[:0], args[1]))
	case "quit":
		s.reply(r, replyOK)
		s.stop = true
	case "auth":
		rp.authenticate(s, r, args)
	case "info":
		rp.info(s, r, args)
	case "hello":
		// Until RESP3 is served, HELLO is answered as a Redis without it
		// (Redis 5) answers: the one reply every client library falls
		// back to RESP2 on.
		rp.refuse(s, r, args, rediscmd.UnknownCommand(args))
	case "watch":
		rp.watch(s, r, cmd, args)
	case "multi", "exec", "discard", "unwatch":
		rp.transaction(s, r, cmd)
	case "reset":
		rp.resetClient(s, r)
	case "time":
		clientTime(s, r)
	case "role":
		s.reply(r, replyRole)
	case "select":
		rp.selectDB(s, r, args)
	case "wait":
		rp.waitReplicas(s, r, cmd, args)
	default:
		s.replyError(r, "unknown or unsupported command '"+string(args[0])+"'")
	}
}

// authenticate checks AUTH against redis_auth, as twemproxy does.
func (rp *redisProtocol) authenticate(s *session, r *request, args [][]byte) {
	switch {
	case rp.auth == nil:
		s.replyError(r, "Client sent AUTH, but no password is set")
	case len(args) == 2 && bytes.Equal(args[1], rp.auth):
		s.authed = true
		s.reply(r, replyOK)
	default:
		s.authed = false
		s.replyError(r, "invalid password")
	}
}

// forward sends the request as the client wrote it to the server of key.
func (rp *redisProtocol) forward(s *session, r *request, key []byte) {
	srv := rp.pool.pick(key)
	if srv == nil {
		s.noServer(r)
		return
	}
	s.sendCur(srv.connFor(s), r)
}
