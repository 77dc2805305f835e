package proxy

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shardproxy/shardproxy/internal/resp"
)

// INFO through a Redis pool is answered by the proxy: a Server section in
// Redis's own layout (what client libraries read, redis_version first), its
// own sections (Clients, Replication, Shardproxy: the pool and the state of
// every server) and a Keyspace section that adds up the servers' lines for
// the pool's database. twemproxy refuses INFO; sending it to one arbitrary
// server would describe that server only.
//
// redis_version is the lowest version among the pool's servers, as each
// reports it in its own INFO: the servers that are up are asked at every
// INFO that shows the Server section (with the Keyspace section, one
// plain INFO per server), and the version each gave is remembered for
// when it is down. Until a server has answered, the version is
// fallbackRedisVersion.

// fallbackRedisVersion is redis_version before any server of the pool has
// told its own: the Redis version whose commands the proxy's table
// follows.
const fallbackRedisVersion = "7.0.0"

// infoSections are the sections a request asks for.
type infoSections struct {
	server, clients, replication, shardproxy, keyspace bool
}

var allInfoSections = infoSections{true, true, true, true, true}

func parseInfoSections(args [][]byte) infoSections {
	if len(args) < 2 {
		return allInfoSections
	}
	var secs infoSections
	for _, a := range args[1:] {
		switch strings.ToLower(string(a)) {
		case "default", "all", "everything":
			secs = allInfoSections
		case "server":
			secs.server = true
		case "clients":
			secs.clients = true
		case "replication":
			secs.replication = true
		case "shardproxy", "proxy":
			secs.shardproxy = true
		case "keyspace":
			secs.keyspace = true
		}
		// Other sections (memory, persistence, …) describe one server:
		// ask that server directly. Like Redis, an unknown section adds
		// nothing.
	}
	return secs
}

// What the servers are asked: one request per server, in the form every
// Redis version answers (INFO with several sections is Redis 7's).
var (
	infoKeyspaceRequest = resp.AppendCommand(nil, []byte("INFO"), []byte("keyspace"))
	infoServerRequest   = resp.AppendCommand(nil, []byte("INFO"), []byte("server"))
	infoDefaultRequest  = resp.AppendCommand(nil, []byte("INFO"))
)

// serverVersions remembers the redis_version each server last reported.
type serverVersions struct {
	mu sync.Mutex // guards by; taken after a session's mu, never before
	by map[*server]string
}

func (v *serverVersions) set(srv *server, version string) {
	v.mu.Lock()
	if v.by == nil {
		v.by = make(map[*server]string)
	}
	v.by[srv] = version
	v.mu.Unlock()
}

// lowest returns the lowest version known, or fallbackRedisVersion.
func (v *serverVersions) lowest() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	low := ""
	for _, ver := range v.by {
		if low == "" || compareVersions(ver, low) < 0 {
			low = ver
		}
	}
	if low == "" {
		return fallbackRedisVersion
	}
	return low
}

// compareVersions compares two "major.minor.patch" versions by number; a
// part that is not a number counts as 0.
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := range max(len(as), len(bs)) {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if c := cmp.Compare(x, y); c != 0 {
			return c
		}
	}
	return strings.Compare(a, b)
}

func (rp *redisProtocol) info(s *session, r *request, args [][]byte) {
	secs := parseInfoSections(args)
	p := rp.pool
	// The proxy's own sections are written here, by the session reader;
	// the servers' answers only fill in redis_version (at vpos) and the
	// Keyspace section.
	local, vpos := rp.infoText(nil, secs)
	var ask []byte
	switch {
	case secs.server && secs.keyspace:
		ask = infoDefaultRequest
	case secs.server:
		ask = infoServerRequest
	case secs.keyspace:
		ask = infoKeyspaceRequest
	}
	var targets []*server
	if ask != nil {
		for _, srv := range p.servers {
			if srv.state() == "up" {
				targets = append(targets, srv)
			}
		}
	}
	if len(targets) == 0 {
		r.keyBuf = rp.finishInfo(r.keyBuf[:0], local, vpos, secs, nil)
		s.reply(r, resp.AppendBulk(r.reply[:0], r.keyBuf))
		return
	}
	r.merge = func(parent *request, dst []byte) []byte {
		parent.keyBuf = rp.finishInfo(parent.keyBuf[:0], local, vpos, secs, func(sum *keyspaceSum) {
			rp.readServerInfo(parent, targets, sum)
		})
		return resp.AppendBulk(dst, parent.keyBuf)
	}
	s.startFragments(r)
	defer s.endFragments(r)
	for _, srv := range targets {
		f := s.newFragment(r)
		s.send(srv.connFor(s), f, ask, nil)
	}
}

// keyspaceSum adds up the servers' keyspace lines for the pool's database.
type keyspaceSum struct {
	keys, expires, ttlWeighted int64
	failed                     int // servers that did not answer
}

// readServerInfo reads each server's INFO reply (fragment i is targets[i]'s):
// its redis_version is remembered, its keyspace line added to sum.
func (rp *redisProtocol) readServerInfo(parent *request, targets []*server, sum *keyspaceSum) {
	db := []byte("db" + strconv.Itoa(rp.pool.cfg.RedisDB) + ":")
	for i, f := range parent.frags {
		body, null, ok := resp.ParseBulk(f.reply)
		if !ok || null {
			sum.failed++
			continue
		}
		for _, ln := range bytes.Split(body, []byte("\r\n")) {
			if v, ok := bytes.CutPrefix(ln, []byte("redis_version:")); ok && i < len(targets) {
				rp.versions.set(targets[i], string(v))
				continue
			}
			rest, ok := bytes.CutPrefix(ln, db)
			if !ok {
				continue
			}
			k, e, ttl := parseKeyspaceLine(string(rest))
			sum.keys += k
			sum.expires += e
			sum.ttlWeighted += ttl * e
		}
	}
}

// finishInfo appends the reply's text: the proxy's sections (local) with
// redis_version inserted at vpos (-1: no Server section), then the
// Keyspace section. ask, if not nil, reads the servers' replies first.
func (rp *redisProtocol) finishInfo(dst, local []byte, vpos int, secs infoSections, ask func(*keyspaceSum)) []byte {
	var sum keyspaceSum
	if ask != nil {
		ask(&sum)
	}
	if vpos >= 0 {
		dst = append(dst, local[:vpos]...)
		dst = append(dst, rp.versions.lowest()...)
		dst = append(dst, local[vpos:]...)
	} else {
		dst = append(dst, local...)
	}
	if !secs.keyspace {
		return dst
	}
	if len(dst) > 0 {
		dst = append(dst, "\r\n"...)
	}
	// Shown as db0: the only database clients see.
	dst = append(dst, "# Keyspace\r\n"...)
	if sum.keys > 0 {
		avg := int64(0)
		if sum.expires > 0 {
			avg = sum.ttlWeighted / sum.expires
		}
		dst = fmt.Appendf(dst, "db0:keys=%d,expires=%d,avg_ttl=%d\r\n", sum.keys, sum.expires, avg)
	}
	if sum.failed > 0 {
		dst = fmt.Appendf(dst, "keyspace_errors:%d\r\n", sum.failed)
	}
	return dst
}

// infoText appends the proxy's own sections and returns where
// redis_version's value goes (-1 without the Server section).
func (rp *redisProtocol) infoText(dst []byte, secs infoSections) ([]byte, int) {
	p := rp.pool
	section := func(name string) {
		if len(dst) > 0 {
			dst = append(dst, "\r\n"...)
		}
		dst = append(dst, "# "+name+"\r\n"...)
	}
	line := func(k string, v any) {
		dst = fmt.Appendf(dst, "%s:%v\r\n", k, v)
	}
	vpos := -1
	if secs.server {
		// Redis 7.0's fields, in its order: client libraries read
		// redis_version (Sidekiq, RQ, …) and some the others; those
		// without a meaning in the proxy have the value of a Redis
		// built the plainest way.
		now := time.Now()
		up := now.Sub(p.opts.started)
		exe, _ := os.Executable()
		section("Server")
		dst = append(dst, "redis_version:"...)
		vpos = len(dst)
		dst = append(dst, "\r\n"...)
		line("redis_git_sha1", "00000000")
		line("redis_git_dirty", 0)
		line("redis_build_id", 0)
		line("redis_mode", "standalone")
		line("os", osName())
		line("arch_bits", strconv.IntSize)
		line("monotonic_clock", "POSIX clock_gettime")
		line("multiplexing_api", multiplexingAPI())
		line("atomicvar_api", "go-sync-atomic")
		line("gcc_version", "0.0.0")
		line("process_id", os.Getpid())
		line("process_supervised", "no")
		line("run_id", p.opts.runID)
		line("tcp_port", listenPort(p))
		line("server_time_usec", now.UnixMicro())
		line("uptime_in_seconds", int64(up.Seconds()))
		line("uptime_in_days", int64(up.Hours()/24))
		line("hz", 10)
		line("configured_hz", 10)
		line("lru_clock", now.Unix()&(1<<24-1))
		line("executable", exe)
		line("config_file", "")
		line("io_threads_active", 0)
		line("shardproxy_version", p.opts.Version)
		line("go_version", runtime.Version())
	}
	if secs.clients {
		section("Clients")
		line("connected_clients", p.clients.Load())
		line("blocked_clients", p.stats.blocked.Load())
	}
	if secs.replication {
		// The proxy is a master without replicas, as ROLE says.
		section("Replication")
		line("role", "master")
		line("connected_slaves", 0)
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
		line("pubsub_dropped", p.stats.pubsubDropped.Load())
		line("reloads", p.opts.reloads.applied.Load())
		line("reloads_failed", p.opts.reloads.failed.Load())
		for i, srv := range p.servers {
			addr := "unknown"
			if a := srv.addr.Load(); a != nil {
				addr = a.String()
			}
			dst = fmt.Appendf(dst, "server%d:name=%s,addr=%s,state=%s,connections=%d,failures=%d\r\n",
				i, srv.name, addr, srv.state(), srv.connected(), srv.failures.Load())
		}
	}
	return dst, vpos
}

// osName is INFO's os: the kernel's name, release and machine, as Redis
// prints them.
func osName() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return runtime.GOOS + " " + runtime.GOARCH
	}
	return unix.ByteSliceToString(u.Sysname[:]) + " " + unix.ByteSliceToString(u.Release[:]) + " " +
		unix.ByteSliceToString(u.Machine[:])
}

// multiplexingAPI is the poller Go's runtime uses on this system.
func multiplexingAPI() string {
	switch runtime.GOOS {
	case "linux", "android":
		return "epoll"
	case "darwin", "ios", "freebsd", "netbsd", "openbsd", "dragonfly":
		return "kqueue"
	case "solaris", "illumos":
		return "evport"
	}
	return "poll"
}

// newRunID returns INFO's run_id: 40 random hex digits, new at every
// process start, as Redis's.
func newRunID() string {
	var b [20]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read does not fail
	return hex.EncodeToString(b[:])
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
	s.eachConn(func(b *backendConn) {
		b.mu.Lock()
		if b.state == stateConnected {
			n++
		}
		b.mu.Unlock()
	})
	return n
}
