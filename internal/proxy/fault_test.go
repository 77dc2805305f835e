package proxy

// Exactly one reply per request under faults. Fifty clients pipeline a mix
// of requests over raw connections while one of three backends is killed,
// left refusing connections, restarted, paused past the pool's timeout,
// resumed, stopped and restarted again. Every client counts the requests it
// sent and the replies it read: they must be equal, each reply well formed
// and consistent with what that client wrote (a reply given to the wrong
// request shows up there). Now and then a client half-closes after a batch
// (it must still get every reply, then the proxy's close) or drops its
// connection without reading, and reconnects. Afterwards the proxy must
// still serve, the pre-written keys of the two other servers must be
// intact, and the goroutines and sockets of the sessions must be gone.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/testutil"
)

const (
	faultClients   = 50
	faultPreKeys   = 2000 // written before the faults, read during and after
	faultOwnKeys   = 8    // value keys per client, written only by it
	faultCounters  = 2    // counter keys per client
	faultMaxBatch  = 16   // requests per write, at most (one more for a counter's set)
	faultEndsOneIn = 100  // one batch in this many half-closes, and one abandons
	faultTimeout   = 500 * time.Millisecond
	faultReplyWait = 5 * time.Second // a reply later than this is lost
	faultLeakWait  = 5 * time.Second // for goroutines and sockets to go
)

// faultVariants are the pool settings each fault test runs with, besides
// timeout. With ejection the checks still hold: ketama never moves the keys
// of live servers, and the victim's keys, wherever they land while it is
// out, are only checked loosely.
var faultVariants = []struct{ name, extra string }{
	{"conns1", "  server_connections: 1\n  auto_eject_hosts: false\n"},
	{"conns2", "  server_connections: 2\n  auto_eject_hosts: false\n"},
	{"eject", "  server_connections: 1\n  auto_eject_hosts: true\n  server_failure_limit: 2\n  server_retry_timeout: 300\n"},
}

// faultSchedule is what happens to the victim while the clients run: each
// step's action, then its hold. Both ends refuse connections (SIGKILL,
// SIGTERM) and the pause outlasts the timeout.
var faultSchedule = [...]struct {
	name string
	act  func(t *testing.T, s *testutil.Server)
	hold time.Duration
}{
	{"no fault", nil, 300 * time.Millisecond},
	{"SIGKILL, port refused", func(t *testing.T, s *testutil.Server) { s.Kill(); faultExpectRefused(t, s) }, time.Second},
	{"restarted, empty", func(t *testing.T, s *testutil.Server) { s.Restart(t) }, 700 * time.Millisecond},
	{"SIGSTOP past timeout", func(t *testing.T, s *testutil.Server) { s.Pause() }, 3 * faultTimeout},
	{"SIGCONT", func(t *testing.T, s *testutil.Server) { s.Resume() }, 700 * time.Millisecond},
	{"SIGTERM, port refused", func(t *testing.T, s *testutil.Server) { s.Stop(); faultExpectRefused(t, s) }, 700 * time.Millisecond},
	{"restarted again", func(t *testing.T, s *testutil.Server) { s.Restart(t) }, 700 * time.Millisecond},
}

func TestFaultsRedisExactlyOneReply(t *testing.T) { runFaults(t, redisFaults) }

func TestFaultsMemcachedExactlyOneReply(t *testing.T) { runFaults(t, memcacheFaults) }

// faultProtocol is what the fault test needs to know of one protocol: the
// rest (requests drawn, replies checked, faults, counts) is shared.
type faultProtocol struct {
	start func(t testing.TB, n int) []*testutil.Server
	pool  func(t testing.TB, extra string, servers ...*testutil.Server) (*Proxy, string)
	// mix is the requests the clients draw from; a kind listed twice is
	// drawn twice as often.
	mix        []faultKind
	maxDelKeys int
	encode     func(dst []byte, op *faultOp) []byte
	// read reads the reply to op into rep, and fails unless it is one
	// complete, well-formed reply of the shape op calls for.
	read func(r *bufio.Reader, op *faultOp, rep *faultReply) error
	// errPrefix starts the errors the proxy makes of a backend's failure;
	// any other error reply is a failure of the test.
	errPrefix string
	stored    string // the status of a successful store
	// incrCreates: INCR of a missing key counts from 0 (Redis); memcached
	// answers NOT_FOUND.
	incrCreates bool
	// pingEchoes: the reply to fPing is its token (Redis PING), not "MN".
	pingEchoes bool
}

var redisFaults = &faultProtocol{
	start: func(t testing.TB, n int) []*testutil.Server { return startRedises(t, n) },
	pool:  redisPool,
	mix: []faultKind{fGet, fGet, fGet, fGet, fSet, fSet, fSet, fSet,
		fMultiGet, fMultiGet, fIncr, fIncr, fDel, fMultiSet, fPing},
	maxDelKeys:  3,
	encode:      redisFaultEncode,
	read:        redisFaultRead,
	errPrefix:   "ERR ",
	stored:      "OK",
	incrCreates: true,
	pingEchoes:  true,
}

var memcacheFaults = &faultProtocol{
	start: func(t testing.TB, n int) []*testutil.Server { return startMemcacheds(t, n) },
	pool:  memcachePool,
	mix: []faultKind{fGet, fGet, fGet, fGet, fSet, fSet, fSet, fSetQuiet,
		fMultiGet, fMultiGet, fIncr, fIncr, fDel, fPing},
	maxDelKeys: 1,
	encode:     memcacheFaultEncode,
	read:       memcacheFaultRead,
	errPrefix:  "SERVER_ERROR ",
	stored:     "STORED",
}

type faultKind uint8

const (
	fGet      faultKind = iota // one key
	fMultiGet                  // several keys, one merged reply
	fSet
	fSetQuiet // memcached set with noreply: no reply at all
	fMultiSet // Redis MSET
	fDel      // Redis DEL of several keys, memcached delete of one
	fIncr
	fPing // answered by the proxy itself, in order: Redis PING token, memcached mn
)

var faultKindNames = [...]string{"get", "multi-get", "set", "set-noreply", "mset", "del", "incr", "ping"}

// faultKey is a key the clients read or write, with what a reply may say
// of it.
type faultKey struct {
	name   string
	victim bool   // placed on the server the faults hit
	pre    string // a pre-written key's value, never written again; "" otherwise

	// A client's own key, written only by that client. known says value is
	// certain ("" = absent). It never is for the victim's keys: their data
	// vanishes with the process, and a write that timed out may still be
	// applied once the server runs again.
	known bool
	value string
	seq   int // values written so far: the value "NAME=N" has 1 <= N <= seq
}

func (k *faultKey) next() string {
	k.seq++
	return k.name + "=" + strconv.Itoa(k.seq)
}

// learn records a successful write of v ("" for a delete).
func (k *faultKey) learn(v string) {
	if k.pre == "" && !k.victim {
		k.known, k.value = true, v
	}
}

// checkValue checks what a retrieval said of k.
func (k *faultKey) checkValue(v faultValue) error {
	switch {
	case k.pre != "":
		if v.present && v.data == k.pre || !v.present && k.victim {
			return nil
		}
		return fmt.Errorf("pre-written key %s (victim %v): got %v, want %q", k.name, k.victim, v, clip(k.pre))
	case k.known:
		if v.present == (k.value != "") && v.data == k.value {
			return nil
		}
		want := "absent"
		if k.value != "" {
			want = strconv.Quote(k.value)
		}
		return fmt.Errorf("key %s on a live server: got %v, want %s", k.name, v, want)
	case !v.present:
		return nil
	}
	n, err := strconv.Atoi(strings.TrimPrefix(v.data, k.name+"="))
	if !strings.HasPrefix(v.data, k.name+"=") || err != nil || n < 1 || n > k.seq {
		return fmt.Errorf("key %s: got %v, a value this client never wrote there (replies mixed up?)", k.name, v)
	}
	return nil
}

// faultOp is one request of a batch.
type faultOp struct {
	kind   faultKind
	keys   []*faultKey
	values []string // what a set writes, one per key; fPing's token
}

func (op *faultOp) onVictim() bool {
	for _, k := range op.keys {
		if k.victim {
			return true
		}
	}
	return false
}

func (op *faultOp) String() string {
	var b strings.Builder
	b.WriteString(faultKindNames[op.kind])
	for _, k := range op.keys {
		b.WriteString(" " + k.name)
		if k.victim {
			b.WriteString("(victim)")
		}
	}
	return b.String()
}

// faultValue is what a retrieval said of one key.
type faultValue struct {
	present bool
	data    string
}

func (v faultValue) String() string {
	if !v.present {
		return "absent"
	}
	return strconv.Quote(clip(v.data))
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + fmt.Sprintf("...(%d bytes)", len(s))
	}
	return s
}

// faultReply is a reply in a form both protocols share.
type faultReply struct {
	err    string       // an error reply's text; nothing else is then set
	status string       // OK, STORED, DELETED, NOT_FOUND, MN; the token PING echoes
	num    int64        // an integer reply, if isNum
	isNum  bool         //
	values []faultValue // a retrieval's answer for each key requested
}

// errWrongReply marks a well-formed reply of the wrong shape for its
// request: a reply that belongs to another request.
var errWrongReply = errors.New("wrong kind of reply")

// faultEnv is what the clients of one run share; read-only once they run,
// but for phase.
type faultEnv struct {
	proto *faultProtocol
	pre   []*faultKey
	phase atomic.Int32 // the step of faultSchedule under way
}

// faultClient is one client connection at a time, and what the client
// knows of its own keys. Only its goroutine touches it until run returns.
type faultClient struct {
	id       int
	env      *faultEnv
	addr     string
	conn     *net.TCPConn
	r        *bufio.Reader
	rnd      *rand.Rand
	own      []*faultKey
	counters []*faultKey
	buf      []byte
	ops      []faultOp
	rep      faultReply
	pings    int
	// unconfirmed are live keys this connection set with noreply that no
	// later request on the key has been answered since. Such a write is
	// only ordered with this session's requests: a client that left now
	// could see it land after the writes of its next connection.
	unconfirmed []*faultKey

	// Counts, read once run has returned.
	sent, received int // requests that get a reply, and replies read
	quiet          int // noreply requests: no reply to count
	quietVictim    int // of which to the victim
	halfClosed     int // connections ended by a half-close, every reply read
	abandoned      int // requests on connections closed without reading
	replies        [len(faultSchedule)]int
	errReplies     [len(faultSchedule)]int
	errTexts       map[string]int
	err            error // the first failure; the client stops there
}

func newFaultClient(t *testing.T, env *faultEnv, id int, addr string, victim string, px *Proxy, seed uint64) *faultClient {
	t.Helper()
	c := &faultClient{
		id: id, env: env, addr: addr,
		rnd:      rand.New(rand.NewPCG(seed, uint64(id))),
		errTexts: map[string]int{},
	}
	if err := c.dial(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.conn.Close() })
	for i := range faultOwnKeys + faultCounters {
		k := &faultKey{name: fmt.Sprintf("c%d:k%d", id, i), known: true}
		k.victim = backendOf(px, k.name) == victim
		if k.victim {
			k.known = false
		}
		if i < faultOwnKeys {
			c.own = append(c.own, k)
		} else {
			c.counters = append(c.counters, k)
		}
	}
	return c
}

func (c *faultClient) dial() error {
	conn, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
	if err != nil {
		return err
	}
	c.conn, c.r = conn.(*net.TCPConn), bufio.NewReader(conn)
	c.unconfirmed = c.unconfirmed[:0]
	return nil
}

// How a connection's batch ends. A half-closing client still reads every
// reply, then the proxy's close. An abandoning client closes without
// reading: its session must still end (no leak), whatever the backend of
// its requests is doing. Abandoned batches only read: writes left behind
// could land after the client's later ones on a new connection.
type faultEnd uint8

const (
	endKeep faultEnd = iota
	endHalfClose
	endAbandon
)

// run sends batches until stop is closed, then a last ping, and checks
// that nothing follows its reply.
func (c *faultClient) run(stop <-chan struct{}) {
	defer func() { c.conn.Close() }()
	for {
		select {
		case <-stop:
			c.err = c.finish()
			return
		default:
		}
		end := endKeep
		switch c.rnd.IntN(faultEndsOneIn) {
		case 0:
			end = endHalfClose
		case 1:
			if len(c.unconfirmed) == 0 {
				end = endAbandon
			}
		}
		c.batch(1+c.rnd.IntN(faultMaxBatch), end == endAbandon)
		if c.err = c.roundTrip(end); c.err != nil {
			return
		}
	}
}

func (c *faultClient) finish() error {
	c.ops = c.ops[:0]
	c.addPing()
	if err := c.roundTrip(endKeep); err != nil {
		return fmt.Errorf("last ping: %w", err)
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if b, err := c.r.ReadByte(); err == nil {
		rest, _ := c.r.Peek(c.r.Buffered())
		return fmt.Errorf("bytes after the last reply (a reply too many): %q", string(b)+clip(string(rest)))
	} else if !errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("after the last reply: %w", err)
	}
	return nil
}

// batch draws about n requests, only retrievals and pings if readOnly.
func (c *faultClient) batch(n int, readOnly bool) {
	c.ops = c.ops[:0]
	p := c.env.proto
	for len(c.ops) < n {
		op := faultOp{kind: p.mix[c.rnd.IntN(len(p.mix))]}
		if readOnly && op.kind != fMultiGet && op.kind != fPing {
			op.kind = fGet
		}
		switch op.kind {
		case fGet:
			op.keys = []*faultKey{c.anyKey()}
		case fMultiGet:
			op.keys = c.distinct(2+c.rnd.IntN(4), c.anyKey)
		case fSet, fSetQuiet:
			op.keys = []*faultKey{c.ownKey()}
			op.values = []string{op.keys[0].next()}
		case fMultiSet:
			op.keys = c.distinct(2+c.rnd.IntN(3), c.ownKey)
			for _, k := range op.keys {
				op.values = append(op.values, k.next())
			}
		case fDel:
			op.keys = c.distinct(1+c.rnd.IntN(p.maxDelKeys), c.ownKey)
		case fIncr:
			k := c.counters[c.rnd.IntN(len(c.counters))]
			op.keys = []*faultKey{k}
			if !p.incrCreates && (!k.known || k.value == "") {
				// memcached increments only an existing number.
				c.ops = append(c.ops, faultOp{kind: fSet, keys: op.keys, values: []string{"0"}})
			}
		case fPing:
			c.addPing()
			continue
		}
		c.ops = append(c.ops, op)
	}
}

func (c *faultClient) addPing() {
	c.pings++
	c.ops = append(c.ops, faultOp{kind: fPing, values: []string{fmt.Sprintf("c%d.%d", c.id, c.pings)}})
}

func (c *faultClient) ownKey() *faultKey { return c.own[c.rnd.IntN(len(c.own))] }

func (c *faultClient) anyKey() *faultKey {
	if c.rnd.IntN(2) == 0 {
		return c.ownKey()
	}
	return c.env.pre[c.rnd.IntN(len(c.env.pre))]
}

// distinct draws up to n different keys.
func (c *faultClient) distinct(n int, pick func() *faultKey) []*faultKey {
	var keys []*faultKey
	for range 4 * n {
		k := pick()
		dup := false
		for _, o := range keys {
			dup = dup || o == k
		}
		if !dup {
			keys = append(keys, k)
			if len(keys) == n {
				break
			}
		}
	}
	return keys
}

// roundTrip writes c.ops in one write, then reads and checks one reply per
// request (none for noreply), in order, and ends the connection as end says.
func (c *faultClient) roundTrip(end faultEnd) error {
	p := c.env.proto
	c.buf = c.buf[:0]
	for i := range c.ops {
		c.buf = p.encode(c.buf, &c.ops[i])
	}
	_ = c.conn.SetWriteDeadline(time.Now().Add(faultReplyWait))
	if _, err := c.conn.Write(c.buf); err != nil {
		return fmt.Errorf("writing a batch of %d requests: %w", len(c.ops), err)
	}
	switch end {
	case endAbandon:
		c.abandoned += len(c.ops)
		c.conn.Close()
		return c.dial()
	case endHalfClose:
		if err := c.conn.CloseWrite(); err != nil {
			return fmt.Errorf("half-closing: %w", err)
		}
	}
	for i := range c.ops {
		if c.ops[i].kind == fSetQuiet {
			c.quiet++
			if c.ops[i].onVictim() {
				c.quietVictim++
			}
		} else {
			c.sent++
		}
	}
	for i := range c.ops {
		op := &c.ops[i]
		c.rep = faultReply{}
		if op.kind != fSetQuiet {
			_ = c.conn.SetReadDeadline(time.Now().Add(faultReplyWait))
			if err := p.read(c.r, op, &c.rep); err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					err = fmt.Errorf("no reply within %v: lost", faultReplyWait)
				}
				return fmt.Errorf("request %d of %d (%v) in phase %q: %w\nbatch: %s",
					i+1, len(c.ops), op, faultSchedule[c.env.phase.Load()].name, err, c.describe())
			}
			c.received++
			c.confirm(op)
			phase := c.env.phase.Load()
			c.replies[phase]++
			if c.rep.err != "" {
				c.errReplies[phase]++
			}
		}
		if err := c.check(op); err != nil {
			return fmt.Errorf("request %d of %d (%v) in phase %q: %w\nbatch: %s",
				i+1, len(c.ops), op, faultSchedule[c.env.phase.Load()].name, err, c.describe())
		}
	}
	if end != endHalfClose {
		return nil
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(faultReplyWait))
	if b, err := c.r.ReadByte(); err != io.EOF {
		return fmt.Errorf("after every reply to a half-closed connection: got %q, %v; want the proxy to close", b, err)
	}
	c.halfClosed++
	c.conn.Close()
	return c.dial()
}

// confirm notes that op was answered: every noreply set before it on the
// same keys has been applied (one session, one server connection: FIFO).
func (c *faultClient) confirm(op *faultOp) {
	c.unconfirmed = slices.DeleteFunc(c.unconfirmed, func(k *faultKey) bool {
		return slices.Contains(op.keys, k)
	})
}

func (c *faultClient) describe() string {
	var parts []string
	for i := range c.ops {
		parts = append(parts, c.ops[i].String())
	}
	return strings.Join(parts, "; ")
}

// check checks the reply just read (nothing for noreply) against what the
// client knows, and learns from it.
func (c *faultClient) check(op *faultOp) error {
	p := c.env.proto
	rep := &c.rep
	if rep.err != "" {
		c.errTexts[rep.err]++
		if !strings.HasPrefix(rep.err, p.errPrefix) {
			return fmt.Errorf("error reply %q: not a server failure", rep.err)
		}
		if !op.onVictim() {
			return fmt.Errorf("error reply %q, but every key is on a live server (a reply meant for another request?)", rep.err)
		}
		// The fragments of a multi-key write on live servers may have done
		// their part.
		if op.kind == fMultiSet || op.kind == fDel {
			for _, k := range op.keys {
				k.known = false
			}
		}
		return nil
	}
	switch op.kind {
	case fPing:
		want := "MN"
		if p.pingEchoes {
			want = op.values[0]
		}
		if rep.status != want {
			return fmt.Errorf("got %q, want %q", rep.status, want)
		}
	case fGet, fMultiGet:
		for i, k := range op.keys {
			if err := k.checkValue(rep.values[i]); err != nil {
				return err
			}
		}
	case fSet, fMultiSet:
		if rep.status != p.stored {
			return fmt.Errorf("got %q, want %q", rep.status, p.stored)
		}
		for i, k := range op.keys {
			k.learn(op.values[i])
		}
	case fSetQuiet:
		k := op.keys[0]
		k.learn(op.values[0]) // a live server stores it
		if !k.victim {
			c.unconfirmed = append(c.unconfirmed, k)
		}
	case fDel:
		return c.checkDel(op)
	case fIncr:
		return c.checkIncr(op)
	}
	return nil
}

func (c *faultClient) checkDel(op *faultOp) error {
	rep := &c.rep
	if rep.isNum { // Redis: how many of the keys existed
		var lo, hi int64
		for _, k := range op.keys {
			switch {
			case !k.known:
				hi++
			case k.value != "":
				lo++
				hi++
			}
		}
		if rep.num < lo || rep.num > hi {
			return fmt.Errorf("deleted %d keys, want %d..%d", rep.num, lo, hi)
		}
	} else {
		k := op.keys[0]
		switch {
		case rep.status != "DELETED" && rep.status != "NOT_FOUND":
			return fmt.Errorf("%w: %q", errWrongReply, rep.status)
		case k.known && (rep.status == "DELETED") != (k.value != ""):
			return fmt.Errorf("%s, but the key holds %q", rep.status, k.value)
		}
	}
	for _, k := range op.keys {
		k.learn("")
	}
	return nil
}

func (c *faultClient) checkIncr(op *faultOp) error {
	p := c.env.proto
	rep := &c.rep
	k := op.keys[0]
	if !rep.isNum {
		if p.incrCreates || rep.status != "NOT_FOUND" {
			return fmt.Errorf("%w: %q", errWrongReply, rep.status)
		}
		if k.known && k.value != "" {
			return fmt.Errorf("NOT_FOUND, but the counter is at %s", k.value)
		}
		k.learn("")
		return nil
	}
	if k.known {
		want := int64(1)
		switch n, err := strconv.ParseInt(k.value, 10, 64); {
		case err == nil:
			want = n + 1
		case !p.incrCreates:
			return fmt.Errorf("got %d for an absent counter", rep.num)
		}
		if rep.num != want {
			return fmt.Errorf("counter at %d, want %d", rep.num, want)
		}
	} else if rep.num < 1 {
		return fmt.Errorf("counter at %d after an increment", rep.num)
	}
	k.learn(strconv.FormatInt(rep.num, 10))
	return nil
}

func runFaults(t *testing.T, p *faultProtocol) {
	for _, v := range faultVariants {
		t.Run(v.name, func(t *testing.T) { faultRun(t, p, v.extra) })
	}
}

func faultRun(t *testing.T, p *faultProtocol, extra string) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	servers := p.start(t, 3)
	victim := servers[0]

	// Registered before the proxy's cleanup, so it runs after the shutdown.
	baseG, baseS := runtime.NumGoroutine(), faultSockets(t)
	t.Cleanup(func() { faultWaitLeaks(t, "after shutdown", baseG, baseS) })
	px, addr := p.pool(t, fmt.Sprintf("  timeout: %d\n", faultTimeout.Milliseconds())+extra, servers...)
	startG, startS := runtime.NumGoroutine(), faultSockets(t)
	backendConns := len(servers) * px.Pools()[0].cfg.ServerConnections

	env := &faultEnv{proto: p}
	for i := range faultPreKeys {
		k := &faultKey{name: fmt.Sprintf("pre:%d", i), pre: faultPreValue(i)}
		k.victim = backendOf(px, k.name) == victim.Addr
		env.pre = append(env.pre, k)
	}
	loader := newFaultClient(t, env, -1, addr, victim.Addr, px, seed)
	for i := 0; i < len(env.pre); i += 100 {
		loader.ops = loader.ops[:0]
		for _, k := range env.pre[i:min(i+100, len(env.pre))] {
			loader.ops = append(loader.ops, faultOp{kind: fSet, keys: []*faultKey{k}, values: []string{k.pre}})
		}
		if err := loader.roundTrip(endKeep); err != nil || len(loader.errTexts) > 0 {
			t.Fatalf("writing the keys before the faults: %v %v", err, loader.errTexts)
		}
	}
	loader.conn.Close()

	clients := make([]*faultClient, faultClients)
	for i := range clients {
		clients[i] = newFaultClient(t, env, i, addr, victim.Addr, px, seed)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.run(stop)
		}()
	}
	go func() {
		wg.Wait()
		close(done)
	}()
	stopClients := sync.OnceValue(func() bool {
		close(stop)
		select {
		case <-done:
			return true
		case <-time.After(3 * faultReplyWait):
			return false
		}
	})
	t.Cleanup(func() { stopClients() }) // if the schedule fails the test

	began := time.Now()
	var took [len(faultSchedule)]time.Duration
	for i, step := range faultSchedule {
		at := time.Now()
		env.phase.Store(int32(i))
		if step.act != nil {
			step.act(t, victim)
		}
		time.Sleep(step.hold)
		took[i] = time.Since(at)
	}
	if !stopClients() {
		t.Fatalf("clients still running %v after they were told to stop\n%s", 3*faultReplyWait, faultGoroutines())
	}
	faultReport(t, px, clients, took, time.Since(began))
	if pool := px.Pools()[0]; pool.ejects() {
		// The victim was ejected (at least once) and, restarted, has
		// rejoined through the probe.
		if n := pool.stats.serverEjects.Load(); n == 0 {
			t.Error("auto_eject_hosts: the victim was never ejected")
		} else {
			t.Logf("the victim was ejected %d times", n)
		}
		if !waitFor(5*time.Second, func() bool { return pool.ring.Load().Live() == len(servers) }) {
			t.Error("auto_eject_hosts: the restarted victim did not rejoin the ring")
		}
	}
	faultCheckServing(t, env, px, addr, victim.Addr, len(servers), seed)
	// Only the backend connections may remain, each with its reader.
	faultWaitLeaks(t, "after the clients left", startG+backendConns, startS+backendConns)
}

// faultReport checks every client's counts and failures, logs what the
// load met in each step of the schedule, and checks that the faults were
// felt.
func faultReport(t *testing.T, px *Proxy, clients []*faultClient, took [len(faultSchedule)]time.Duration, loadTime time.Duration) {
	t.Helper()
	var sent, received, quiet, quietVictim, halfClosed, abandoned int
	var replies, errReplies [len(faultSchedule)]int
	errTexts := map[string]int{}
	failed := 0
	for _, c := range clients {
		sent += c.sent
		received += c.received
		quiet += c.quiet
		quietVictim += c.quietVictim
		halfClosed += c.halfClosed
		abandoned += c.abandoned
		for i := range replies {
			replies[i] += c.replies[i]
			errReplies[i] += c.errReplies[i]
		}
		for e, n := range c.errTexts {
			errTexts[e] += n
		}
		if c.err != nil || c.sent != c.received {
			if failed++; failed <= 5 {
				t.Errorf("client %d: sent %d requests, read %d replies: %v", c.id, c.sent, c.received, c.err)
			}
		}
	}
	if failed > 5 {
		t.Errorf("... and %d more clients failed", failed-5)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d clients, %v of load: %d requests answered of %d sent, and %d noreply (%d to the victim); "+
		"%d connections half-closed, %d requests abandoned\n",
		len(clients), loadTime.Round(time.Millisecond), received, sent, quiet, quietVictim, halfClosed, abandoned)
	for i, step := range faultSchedule {
		fmt.Fprintf(&b, "  %-24s %6v  %6d replies, %5d errors\n", step.name, took[i].Round(time.Millisecond), replies[i], errReplies[i])
	}
	for e, n := range errTexts {
		fmt.Fprintf(&b, "  %6d × %q\n", n, e)
	}
	t.Log(b.String())
	// The faults were felt: dialling a dead server, and a paused one.
	for _, want := range []string{"refused", "timed out"} {
		seen := false
		for e := range errTexts {
			seen = seen || strings.Contains(e, want)
		}
		if !seen {
			t.Errorf("no error reply says %q: did the fault happen under load?", want)
		}
	}
	if n := px.Pools()[0].NoreplyErrors(); n > uint64(quietVictim) {
		t.Errorf("%d noreply requests counted as failed, but only %d went to the victim", n, quietVictim)
	}
}

// faultCheckServing checks that the proxy serves every server again,
// through every backend connection (session i uses connection i mod
// server_connections, so that many new clients reach them all), and that
// the keys written before the faults to live servers are intact. The
// clients it opens are closed when it returns.
func faultCheckServing(t *testing.T, env *faultEnv, px *Proxy, addr, victim string, servers int, seed uint64) {
	t.Helper()
	keyOn := map[string]*faultKey{}
	for i := 0; len(keyOn) < servers; i++ {
		k := &faultKey{name: fmt.Sprintf("alive:%d", i)}
		srv := backendOf(px, k.name)
		k.victim = srv == victim
		k.known = !k.victim // absent on live servers; on the victim, checked loosely
		if keyOn[srv] == nil {
			keyOn[srv] = k
		}
	}
	var checkers []*faultClient
	for i := range px.Pools()[0].cfg.ServerConnections {
		c := newFaultClient(t, env, 1000+i, addr, victim, px, seed)
		defer c.conn.Close()
		checkers = append(checkers, c)
		deadline := time.Now().Add(5 * time.Second)
		for {
			c.ops, c.errTexts = c.ops[:0], map[string]int{}
			c.addPing()
			for _, k := range keyOn {
				v := k.next()
				c.ops = append(c.ops,
					faultOp{kind: fSet, keys: []*faultKey{k}, values: []string{v}},
					faultOp{kind: fGet, keys: []*faultKey{k}})
			}
			err := c.roundTrip(endKeep)
			if err == nil && len(c.errTexts) == 0 {
				break
			}
			if err != nil || time.Now().After(deadline) {
				t.Fatalf("after the faults, connection %d: %v %v", i, err, c.errTexts)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	var live []*faultKey
	for _, k := range env.pre {
		if !k.victim {
			live = append(live, k)
		}
	}
	c := checkers[0]
	for i := 0; i < len(live); i += 50 {
		c.ops = append(c.ops[:0], faultOp{kind: fMultiGet, keys: live[i:min(i+50, len(live))]})
		if err := c.roundTrip(endKeep); err != nil {
			t.Fatalf("reading back the keys written before the faults: %v", err)
		}
	}
}

// faultPreValue is the value of pre-written key i; a few are larger than
// the proxy's 16 KiB buffers.
func faultPreValue(i int) string {
	n := 8 + i%120
	if i%97 == 0 {
		n = 20000
	}
	v := make([]byte, n)
	for j := range v {
		v[j] = 'a' + byte((i+j)%26)
	}
	return fmt.Sprintf("pre:%d/%s", i, v)
}

func faultExpectRefused(t *testing.T, s *testutil.Server) {
	c, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err == nil {
		c.Close()
		t.Errorf("%v still accepts connections", s)
	} else if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dialling %v: %v, want connection refused", s, err)
	}
}

// faultSockets counts the process's open sockets.
func faultSockets(t testing.TB) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("counting sockets: %v", err)
	}
	n := 0
	for _, fd := range fds {
		if l, err := os.Readlink("/proc/self/fd/" + fd.Name()); err == nil && strings.HasPrefix(l, "socket:") {
			n++
		}
	}
	return n
}

// faultWaitLeaks waits until at most goroutines goroutines and sockets
// sockets are left, and fails with a goroutine dump if they are not.
func faultWaitLeaks(t *testing.T, when string, goroutines, sockets int) {
	t.Helper()
	deadline := time.Now().Add(faultLeakWait)
	for {
		g, s := runtime.NumGoroutine(), faultSockets(t)
		if g <= goroutines && s <= sockets {
			t.Logf("%s: %d goroutines (at most %d), %d sockets (at most %d)", when, g, goroutines, s, sockets)
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: %d goroutines (want at most %d), %d sockets (want at most %d)\n%s",
				when, g, goroutines, s, sockets, faultGoroutines())
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func faultGoroutines() string {
	var b bytes.Buffer
	_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
	return b.String()
}

// Redis.

func redisFaultEncode(dst []byte, op *faultOp) []byte {
	var args []string
	switch op.kind {
	case fGet:
		args = []string{"GET", op.keys[0].name}
	case fMultiGet, fDel:
		args = []string{"MGET"}
		if op.kind == fDel {
			args[0] = "DEL"
		}
		for _, k := range op.keys {
			args = append(args, k.name)
		}
	case fSet:
		args = []string{"SET", op.keys[0].name, op.values[0]}
	case fMultiSet:
		args = []string{"MSET"}
		for i, k := range op.keys {
			args = append(args, k.name, op.values[i])
		}
	case fIncr:
		args = []string{"INCR", op.keys[0].name}
	case fPing:
		args = []string{"PING", op.values[0]}
	}
	return append(dst, cmd(args...)...)
}

// redisFaultShape is the type of a successful reply to each request.
var redisFaultShape = [...]byte{fGet: '$', fMultiGet: '*', fSet: '+', fMultiSet: '+', fDel: ':', fIncr: ':', fPing: '$'}

func redisFaultRead(r *bufio.Reader, op *faultOp, rep *faultReply) error {
	v, err := readFaultRESP(r, 0)
	if err != nil {
		return err
	}
	if v.kind == '-' {
		rep.err = v.str
		return nil
	}
	if v.kind != redisFaultShape[op.kind] || v.null && op.kind != fGet {
		return fmt.Errorf("%w: %s", errWrongReply, v)
	}
	switch {
	case op.kind == fPing:
		rep.status = v.str
	case v.kind == '$':
		rep.values = []faultValue{{!v.null, v.str}}
	case v.kind == '*':
		if len(v.elems) != len(op.keys) {
			return fmt.Errorf("%w: %d values for %d keys", errWrongReply, len(v.elems), len(op.keys))
		}
		for _, e := range v.elems {
			if e.kind != '$' {
				return fmt.Errorf("%w: %s in an MGET reply", errWrongReply, e)
			}
			rep.values = append(rep.values, faultValue{!e.null, e.str})
		}
	case v.kind == '+':
		rep.status = v.str
	case v.kind == ':':
		rep.num, rep.isNum = v.n, true
	}
	return nil
}

// respValue is one RESP2 reply.
type respValue struct {
	kind  byte // + - : $ *
	str   string
	n     int64
	null  bool
	elems []respValue
}

func (v respValue) String() string {
	switch {
	case v.null:
		return string(v.kind) + "-1 (nil)"
	case v.kind == ':':
		return ":" + strconv.FormatInt(v.n, 10)
	case v.kind == '*':
		return fmt.Sprintf("*%d array", len(v.elems))
	}
	return string(v.kind) + strconv.Quote(clip(v.str))
}

// readFaultRESP reads one reply and fails unless it is well formed.
func readFaultRESP(r *bufio.Reader, depth int) (respValue, error) {
	var v respValue
	line, err := readFaultLine(r)
	if err != nil {
		return v, err
	}
	if line == "" {
		return v, errors.New("empty line where a reply belongs")
	}
	v.kind, line = line[0], line[1:]
	switch v.kind {
	case '+', '-':
		v.str = line
	case ':':
		if v.n, err = strconv.ParseInt(line, 10, 64); err != nil {
			return v, fmt.Errorf("bad integer reply %q", line)
		}
	case '$', '*':
		n, err := strconv.Atoi(line)
		if err != nil || n < -1 || v.kind == '*' && depth > 0 {
			return v, fmt.Errorf("bad reply header %q", string(v.kind)+line)
		}
		if n == -1 {
			v.null = true
			return v, nil
		}
		if v.kind == '*' {
			for range n {
				e, err := readFaultRESP(r, depth+1)
				if err != nil {
					return v, err
				}
				v.elems = append(v.elems, e)
			}
			return v, nil
		}
		data := make([]byte, n+2)
		if _, err := io.ReadFull(r, data); err != nil {
			return v, err
		}
		if string(data[n:]) != "\r\n" {
			return v, fmt.Errorf("bulk of %d bytes not followed by CRLF: %q", n, clip(string(data)))
		}
		v.str = string(data[:n])
	default:
		return v, fmt.Errorf("not a reply: %q", clip(string(v.kind)+line))
	}
	return v, nil
}

// readFaultLine reads one CRLF-terminated line, without the CRLF.
func readFaultLine(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		if line != "" {
			err = fmt.Errorf("%w after a partial line %q", err, clip(line))
		}
		return "", err
	}
	if !strings.HasSuffix(line, "\r\n") {
		return "", fmt.Errorf("line not ended by CRLF: %q", clip(line))
	}
	return line[:len(line)-2], nil
}

// Memcached.

func memcacheFaultEncode(dst []byte, op *faultOp) []byte {
	switch op.kind {
	case fGet, fMultiGet:
		dst = append(dst, "get"...)
		for _, k := range op.keys {
			dst = append(dst, ' ')
			dst = append(dst, k.name...)
		}
		return append(dst, "\r\n"...)
	case fSet, fSetQuiet:
		noreply := ""
		if op.kind == fSetQuiet {
			noreply = " noreply"
		}
		return fmt.Appendf(dst, "set %s 0 0 %d%s\r\n%s\r\n", op.keys[0].name, len(op.values[0]), noreply, op.values[0])
	case fDel:
		return fmt.Appendf(dst, "delete %s\r\n", op.keys[0].name)
	case fIncr:
		return fmt.Appendf(dst, "incr %s 1\r\n", op.keys[0].name)
	case fPing:
		return append(dst, "mn\r\n"...)
	}
	panic(fmt.Sprintf("memcached has no %v in this test", op))
}

// memcacheFaultStatus is the status lines a request may be answered with.
var memcacheFaultStatus = [...][]string{fSet: {"STORED", "NOT_STORED"}, fDel: {"DELETED", "NOT_FOUND"}, fIncr: {"NOT_FOUND"}, fPing: {"MN"}}

func memcacheFaultRead(r *bufio.Reader, op *faultOp, rep *faultReply) error {
	line, err := readFaultLine(r)
	if err != nil {
		return err
	}
	if line == "ERROR" || strings.HasPrefix(line, "CLIENT_ERROR ") || strings.HasPrefix(line, "SERVER_ERROR ") {
		rep.err = line
		return nil
	}
	switch op.kind {
	case fGet, fMultiGet:
		rep.values = make([]faultValue, len(op.keys))
		next := 0
		for line != "END" {
			f := strings.Fields(line)
			if len(f) != 4 || f[0] != "VALUE" || f[2] != "0" {
				return fmt.Errorf("%w: %q where a VALUE line or END belongs", errWrongReply, clip(line))
			}
			n, err := strconv.Atoi(f[3])
			if err != nil || n < 0 {
				return fmt.Errorf("bad VALUE line %q", line)
			}
			data := make([]byte, n+2)
			if _, err := io.ReadFull(r, data); err != nil {
				return err
			}
			if string(data[n:]) != "\r\n" {
				return fmt.Errorf("value of %d bytes not followed by CRLF: %q", n, clip(string(data)))
			}
			for next < len(op.keys) && op.keys[next].name != f[1] {
				next++
			}
			if next == len(op.keys) {
				return fmt.Errorf("%w: VALUE %s not requested, or out of order", errWrongReply, f[1])
			}
			rep.values[next] = faultValue{true, string(data[:n])}
			next++
			if line, err = readFaultLine(r); err != nil {
				return err
			}
		}
		return nil
	case fIncr:
		if n, err := strconv.ParseUint(line, 10, 64); err == nil {
			rep.num, rep.isNum = int64(n), true
			return nil
		}
	}
	for _, s := range memcacheFaultStatus[op.kind] {
		if line == s {
			rep.status = line
			return nil
		}
	}
	return fmt.Errorf("%w: %q", errWrongReply, clip(line))
}
