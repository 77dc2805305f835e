package proxy

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/shardproxy/shardproxy/internal/resp"
)

// INFO through a Redis pool is answered by the proxy: its own sections
// (Server, Clients, Shardproxy: the pool and the state of every server)
// and a Keyspace section that adds up the servers' lines for the pool's
// database. twemproxy refuses INFO; sending it to one arbitrary server
// would describe that server only.

// infoSections are the sections a request asks for.
type infoSections struct {
	server, clients, shardproxy, keyspace bool
}

func parseInfoSections(args [][]byte) infoSections {
	if len(args) < 2 {
		return infoSections{true, true, true, true}
	}
	var secs infoSections
	for _, a := range args[1:] {
		switch strings.ToLower(string(a)) {
		case "default", "all", "everything":
			secs = infoSections{true, true, true, true}
		case "server":
			secs.server = true
		case "clients":
			secs.clients = true
		case "shardproxy", "proxy":
			secs.shardproxy = true
		case "keyspace":
			secs.keyspace = true
		}
		// Other sections (memory, replication, …) describe one server:
		// ask that server directly. Like Redis, an unknown section adds
		// nothing.
	}
	return secs
}

var infoKeyspaceRequest = resp.AppendCommand(nil, []byte("INFO"), []byte("keyspace"))

func (rp *redisProtocol) info(s *session, r *request, args [][]byte) {
	secs := parseInfoSections(args)
	p := rp.pool
	text := p.infoText(r.keyBuf[:0], secs)
	var targets []*server
	if secs.keyspace {
		for _, srv := range p.servers {
			if srv.state() == "up" {
				targets = append(targets, srv)
			}
		}
	}
	if len(targets) == 0 {
		if secs.keyspace {
			text = append(text, "# Keyspace\r\n"...)
		}
		r.keyBuf = text
		s.reply(r, resp.AppendBulk(r.reply[:0], text))
		return
	}
	// Ask every live server for its keyspace; mergeInfo appends the sum
	// to the local sections kept in keyBuf.
	r.keyBuf = text
	r.merge = mergeInfo
	s.startFragments(r)
	defer s.endFragments(r)
	for _, srv := range targets {
		f := s.newFragment(r)
		s.send(srv.connFor(s), f, infoKeyspaceRequest, nil)
	}
}

// infoText appends the proxy's own sections.
func (p *Pool) infoText(dst []byte, secs infoSections) []byte {
	section := func(name string) {
		if len(dst) > 0 {
			dst = append(dst, "\r\n"...)
		}
		dst = append(dst, "# "+name+"\r\n"...)
	}
	line := func(k string, v any) {
		dst = fmt.Appendf(dst, "%s:%v\r\n", k, v)
	}
	if secs.server {
		up := time.Since(p.opts.started)
		section("Server")
		line("shardproxy_version", p.opts.Version)
		line("redis_mode", "proxy")
		line("go_version", runtime.Version())
		line("os", runtime.GOOS+" "+runtime.GOARCH)
		line("process_id", os.Getpid())
		line("tcp_port", listenPort(p))
		line("uptime_in_seconds", int64(up.Seconds()))
		line("uptime_in_days", int64(up.Hours()/24))
	}
	if secs.clients {
		section("Clients")
		line("connected_clients", p.clients.Load())
	}
	if secs.shardproxy {
		section("Shardproxy")
		line("pool", p.cfg.Name)
		line("listen", p.cfg.Listen.String())
		line("hash", p.cfg.Hash)
		line("distribution", p.cfg.Distribution)
		live := 0
		for _, srv := range p.servers {
			if srv.state() == "up" {
				live++
			}
		}
		line("servers", len(p.servers))
		line("servers_up", live)
		line("auto_eject_hosts", boolInt(p.ejects()))
		line("server_ejects", p.stats.serverEjects.Load())
		line("forward_error", p.stats.forwardErrors.Load())
		line("fragments", p.stats.fragments.Load())
		for i, srv := range p.servers {
			addr := "unknown"
			if a := srv.addr.Load(); a != nil {
				addr = a.String()
			}
			dst = fmt.Appendf(dst, "server%d:name=%s,addr=%s,state=%s,connections=%d,failures=%d\r\n",
				i, srv.name, addr, srv.state(), srv.connected(), srv.failures.Load())
		}
	}
	if secs.keyspace && len(dst) > 0 {
		dst = append(dst, "\r\n"...) // the Keyspace section follows
	}
	return dst
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func listenPort(p *Pool) string {
	if a := p.Addr(); a != nil {
		if _, port, ok := strings.Cut(a.String(), "]:"); ok {
			return port
		}
		if i := strings.LastIndexByte(a.String(), ':'); i >= 0 {
			return a.String()[i+1:]
		}
	}
	return "0"
}

// mergeInfo appends the Keyspace section, the servers' counts added up for
// the pool's database (shown as db0, the only database clients see), to
// the local sections in keyBuf. A server that failed to answer is left out
// and named in keyspace_errors.
func mergeInfo(p *request, dst []byte) []byte {
	db := "db" + strconv.Itoa(p.sess.pool.cfg.RedisDB) + ":"
	var keys, expires, ttlWeighted int64
	failed := 0
	for _, f := range p.frags {
		body, null, ok := resp.ParseBulk(f.reply)
		if !ok || null {
			failed++
			continue
		}
		for _, ln := range bytes.Split(body, []byte("\r\n")) {
			rest, ok := bytes.CutPrefix(ln, []byte(db))
			if !ok {
				continue
			}
			k, e, ttl := parseKeyspaceLine(string(rest))
			keys += k
			expires += e
			ttlWeighted += ttl * e
		}
	}
	text := append(p.keyBuf, "# Keyspace\r\n"...)
	if keys > 0 {
		avg := int64(0)
		if expires > 0 {
			avg = ttlWeighted / expires
		}
		text = fmt.Appendf(text, "db0:keys=%d,expires=%d,avg_ttl=%d\r\n", keys, expires, avg)
	}
	if failed > 0 {
		text = fmt.Appendf(text, "keyspace_errors:%d\r\n", failed)
	}
	p.keyBuf = text
	return resp.AppendBulk(dst, text)
}

// parseKeyspaceLine reads "keys=1,expires=0,avg_ttl=0".
func parseKeyspaceLine(s string) (keys, expires, avgTTL int64) {
	for _, kv := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, _ := strconv.ParseInt(v, 10, 64)
		switch k {
		case "keys":
			keys = n
		case "expires":
			expires = n
		case "avg_ttl":
			avgTTL = n
		}
	}
	return keys, expires, avgTTL
}

// state is what INFO says about a server: up, ejected, or (Sentinel
// pools) no_master while its group's master is unknown.
func (s *server) state() string {
	if s.addr.Load() == nil {
		return "no_master"
	}
	if s.isEjected() {
		return "ejected"
	}
	return "up"
}

// connected counts the server's open connections.
func (s *server) connected() int {
	n := 0
	for _, b := range s.conns {
		b.mu.Lock()
		if b.state == stateConnected {
			n++
		}
		b.mu.Unlock()
	}
	return n
}
