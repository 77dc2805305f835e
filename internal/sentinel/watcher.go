package sentinel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/shardproxy/shardproxy/internal/config"
)

// The reasons an Event gives for a new master.
const (
	// ReasonDiscovered: the first verified master of a group.
	ReasonDiscovered = "discovered"
	// ReasonSwitch: a +switch-master message from the Sentinel.
	ReasonSwitch = "switch-master"
	// ReasonHeartbeat: a periodic get-master-addr-by-name answered a new,
	// verified address, e.g. after a failover the subscription missed
	// while the Watcher was moving to another Sentinel.
	ReasonHeartbeat = "heartbeat"
)

// Defaults for the zero values of Config.
const (
	DefaultHeartbeat = time.Second // twemproxy-163's sentinel_heartbeat
	DefaultTimeout   = time.Second
)

// minBackoff is the least time between two rounds of attempts over every
// Sentinel of the list, whatever the heartbeat.
const minBackoff = 100 * time.Millisecond

// switchChannel is where Sentinel announces a new master (sentinel.c,
// sentinelEvent "+switch-master").
const switchChannel = "+switch-master"

// Errors of New.
var (
	ErrNoSentinels = errors.New("no sentinels")
	ErrNoGroups    = errors.New("no groups")
)

// errNoPong reports a subscription that did not answer PING in time.
var errNoPong = errors.New("no reply to PING on the subscription")

// Config says what a Watcher watches and how.
type Config struct {
	Pool      string          // the pool's name, for logs and the connections' client name
	Sentinels []config.Server // tried in order, moving to the next when one fails
	Groups    []string        // Sentinel master names
	Heartbeat time.Duration   // how often masters are re-asked; DefaultHeartbeat if 0
	// Auth is the pool's redis_auth, sent as AUTH to a master before the
	// ROLE check. Sentinels themselves are not authenticated.
	Auth string
	// DialTimeout bounds each dial and each command's reply, to Sentinels
	// and to masters; DefaultTimeout if 0.
	DialTimeout time.Duration
	Logger      *slog.Logger // nil discards the logs
}

// Event announces a group's new master.
type Event struct {
	Group    string
	Addr     string // the new master, "host:port"
	OldAddr  string // the previous one; "" when Reason is ReasonDiscovered
	Reason   string // ReasonDiscovered, ReasonSwitch or ReasonHeartbeat
	Sentinel string // the Sentinel ("host:port") that gave the address
}

// Watcher finds the master of each group through Redis Sentinel and
// follows failovers, as twemproxy-163's Sentinel mode does: see
// docs/sentinel.md.
//
// It runs one goroutine, which owns the Sentinel connections and calls the
// onChange function; Master and Ready may be called from any goroutine.
type Watcher struct {
	// Immutable after New.
	sentinels  []string // "host:port"
	groups     []*group // in the order of Config.Groups
	byName     map[string]*group
	heartbeat  time.Duration
	backoff    time.Duration
	timeout    time.Duration
	auth       string
	clientName string
	onChange   func(Event)
	log        *slog.Logger
	ctx        context.Context // done once Close is called
	cancel     context.CancelFunc
	ready      chan struct{} // closed once every group has a master
	done       chan struct{} // closed when the goroutine has returned
	start      sync.Once     // starts the goroutine, or (from Close) stands in for it

	mu sync.Mutex // guards group.addr for readers other than the goroutine

	// Owned by the goroutine.
	unserved int      // groups without a master
	failures []string // per Sentinel, the failure logged last; "" once it works
}

// group is one Sentinel master name.
type group struct {
	name string
	// addr is the verified master, "" until there is one. Written by the
	// goroutine with Watcher.mu held; read by it freely, by others under mu.
	addr string
	// problem is the last problem logged for the group, so that a problem
	// is logged once, not at every heartbeat. Owned by the goroutine.
	problem string
}

// New returns a Watcher for cfg that calls onChange (which may be nil) with
// each group's first verified master and each change of it. onChange is
// called from the Watcher's goroutine, one call at a time, with no lock
// held; it must not call Close. Call Start to begin.
//
// New fails only on a Config it cannot work with: no sentinels, no groups,
// or a group listed twice. It does no I/O.
func New(cfg Config, onChange func(Event)) (*Watcher, error) {
	var problems []error
	if len(cfg.Sentinels) == 0 {
		problems = append(problems, ErrNoSentinels)
	}
	if len(cfg.Groups) == 0 {
		problems = append(problems, ErrNoGroups)
	}
	w := &Watcher{
		byName:     make(map[string]*group, len(cfg.Groups)),
		heartbeat:  cfg.Heartbeat,
		timeout:    cfg.DialTimeout,
		auth:       cfg.Auth,
		clientName: clientName(cfg.Pool),
		onChange:   onChange,
		log:        cfg.Logger,
		ready:      make(chan struct{}),
		done:       make(chan struct{}),
	}
	for _, s := range cfg.Sentinels {
		if s.Network != "tcp" {
			problems = append(problems, fmt.Errorf("sentinel %q is not a TCP address", s.String()))
			continue
		}
		w.sentinels = append(w.sentinels, s.String())
	}
	for _, name := range cfg.Groups {
		if w.byName[name] != nil {
			problems = append(problems, fmt.Errorf("group %q listed twice", name))
			continue
		}
		g := &group{name: name}
		w.groups = append(w.groups, g)
		w.byName[name] = g
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("sentinel: pool %q: %w", cfg.Pool, errors.Join(problems...))
	}
	if w.heartbeat <= 0 {
		w.heartbeat = DefaultHeartbeat
	}
	w.backoff = max(w.heartbeat, minBackoff)
	if w.timeout <= 0 {
		w.timeout = DefaultTimeout
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	w.log = w.log.With("pool", cfg.Pool)
	w.unserved = len(w.groups)
	w.failures = make([]string, len(w.sentinels))
	w.ctx, w.cancel = context.WithCancel(context.Background())
	return w, nil
}

// Start starts the Watcher's goroutine and returns at once. Calls after the
// first, or after Close, do nothing.
func (w *Watcher) Start() {
	w.start.Do(func() { go w.run() })
}

// Close stops the Watcher: it closes every connection, waits for the
// goroutine to return, and returns. It does not wait for a Sentinel or a
// master that does not answer. onChange is never called once Close has
// returned. Close may be called more than once.
func (w *Watcher) Close() {
	w.cancel()
	w.start.Do(func() { close(w.done) }) // never started: nothing to wait for
	<-w.done
}

// Master returns the group's current master, "host:port", and true; or
// false if the group has no verified master yet (or is not watched).
func (w *Watcher) Master(group string) (addr string, ok bool) {
	g := w.byName[group]
	if g == nil {
		return "", false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return g.addr, g.addr != ""
}

// Ready returns a channel that is closed once every group has a master. It
// is never closed if some group never gets one.
func (w *Watcher) Ready() <-chan struct{} { return w.ready }

// run asks the Sentinels in turn, each until it fails, until Close.
func (w *Watcher) run() {
	defer close(w.done)
	// At most one attempt per Sentinel per backoff period, so that a list
	// of dead (or useless) Sentinels is not dialled in a busy loop, while a
	// Sentinel that fails is followed at once by the next one.
	var roundStart time.Time
	tries := 0
	for i := 0; ; i = (i + 1) % len(w.sentinels) {
		if tries == len(w.sentinels) {
			if !w.sleep(time.Until(roundStart.Add(w.backoff))) {
				return
			}
			tries = 0
		}
		if tries == 0 {
			roundStart = time.Now()
		}
		tries++
		err := w.watch(i)
		if w.ctx.Err() != nil {
			return
		}
		// A Sentinel that keeps failing the same way is reported once at
		// Warn, then at Debug, so a dead one does not fill the log.
		level := slog.LevelWarn
		if err.Error() == w.failures[i] {
			level = slog.LevelDebug
		}
		w.failures[i] = err.Error()
		w.log.Log(w.ctx, level, "sentinel failed, trying the next one", "sentinel", w.sentinels[i],
			"next", w.sentinels[(i+1)%len(w.sentinels)], "err", err)
	}
}

// sleep waits for d, and reports false if the Watcher was closed meanwhile.
func (w *Watcher) sleep(d time.Duration) bool {
	if d <= 0 {
		return w.ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-w.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// watch follows the masters through the i-th Sentinel until it fails or
// the Watcher is closed, and returns why it stopped.
//
// Two connections: sub is subscribed to +switch-master and is read
// whenever nothing else is to be done; cmd asks for the masters at once and
// then every heartbeat, when sub is also PINGed to prove it alive.
func (w *Watcher) watch(i int) error {
	addr := w.sentinels[i]
	cmd, err := dial(w.ctx, addr, w.timeout)
	if err != nil {
		return err
	}
	defer cmd.close()
	sub, err := dial(w.ctx, addr, w.timeout)
	if err != nil {
		return err
	}
	defer sub.close()

	// Subscribe first, so that a failover that ends while the masters are
	// being asked for is not missed.
	if err := w.subscribe(sub); err != nil {
		return err
	}
	// The name shows operators who is connected (CLIENT LIST). A Sentinel
	// too old for CLIENT SETNAME refuses it, which does not matter.
	if _, err := cmd.do("CLIENT", "SETNAME", w.clientName); err != nil {
		return err
	}
	if err := w.refresh(cmd, addr); err != nil {
		return err
	}
	w.failures[i] = ""
	w.log.Info("watching masters through sentinel", "sentinel", addr)

	next := time.Now().Add(w.heartbeat)
	var pongBy time.Time // zero when no PING is awaiting its reply
	for {
		deadline := next
		if !pongBy.IsZero() && pongBy.Before(deadline) {
			deadline = pongBy
		}
		r, err := sub.read(deadline)
		if err == nil {
			if err := w.handlePush(r, addr, &pongBy); err != nil {
				return err
			}
			continue
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
		now := time.Now()
		if !pongBy.IsZero() && !now.Before(pongBy) {
			return errNoPong
		}
		if now.Before(next) {
			continue
		}
		if pongBy.IsZero() {
			sub.send("PING")
			if err := sub.flush(); err != nil {
				return err
			}
			pongBy = now.Add(w.timeout)
		}
		if err := w.refresh(cmd, addr); err != nil {
			return err
		}
		next = time.Now().Add(w.heartbeat)
	}
}

// subscribe subscribes sub to +switch-master and waits for Sentinel to
// confirm it.
func (w *Watcher) subscribe(sub *conn) error {
	sub.send("CLIENT", "SETNAME", w.clientName)
	sub.send("SUBSCRIBE", switchChannel)
	if err := sub.flush(); err != nil {
		return err
	}
	deadline := time.Now().Add(w.timeout)
	if _, err := sub.read(deadline); err != nil { // SETNAME's reply, see watch
		return err
	}
	r, err := sub.read(deadline)
	if err != nil {
		return err
	}
	p, err := parsePush(r)
	if err != nil {
		return fmt.Errorf("SUBSCRIBE %s: %w", switchChannel, err)
	}
	if p.kind != "subscribe" || string(p.channel) != switchChannel {
		return fmt.Errorf("SUBSCRIBE %s: %w: %q", switchChannel, ErrBadReply, r)
	}
	return nil
}

// handlePush acts on a message read from the subscription.
func (w *Watcher) handlePush(r []byte, sentinel string, pongBy *time.Time) error {
	p, err := parsePush(r)
	if err != nil {
		return err
	}
	switch {
	case p.kind == "pong":
		*pongBy = time.Time{}
	case p.kind == "message" && string(p.channel) == switchChannel:
		sm, err := parseSwitchMaster(p.payload)
		if err != nil {
			// One odd message is no reason to leave a working Sentinel;
			// the heartbeat will find the master if it did change.
			w.log.Warn("ignoring a +switch-master message", "sentinel", sentinel, "err", err)
			return nil
		}
		g := w.byName[sm.group]
		if g == nil {
			return nil // another pool's group
		}
		// Sentinel announces the switch once it has agreed on it and the
		// new master has taken the role, so it is not checked again here:
		// waiting on ROLE would only delay the switch.
		w.setMaster(g, sm.newAddr, ReasonSwitch, sentinel)
	}
	return nil
}

// refresh asks the Sentinel for the master of every group, in one round
// trip, then checks every new address with ROLE before taking it. An error
// means the Sentinel failed; problems of single groups are logged.
func (w *Watcher) refresh(cmd *conn, sentinel string) error {
	for _, g := range w.groups {
		cmd.send("SENTINEL", "get-master-addr-by-name", g.name)
	}
	if err := cmd.flush(); err != nil {
		return err
	}
	type answer struct {
		addr  string
		known bool
	}
	answers := make([]answer, len(w.groups))
	deadline := time.Now().Add(w.timeout)
	for i, g := range w.groups {
		r, err := cmd.read(deadline)
		if err != nil {
			return err
		}
		addr, known, err := parseMasterAddr(r)
		if err != nil {
			return fmt.Errorf("get-master-addr-by-name %s: %w", g.name, err)
		}
		answers[i] = answer{addr, known}
	}
	for i, g := range w.groups {
		if w.ctx.Err() != nil {
			return w.ctx.Err()
		}
		a := answers[i]
		switch {
		case !a.known:
			// A group the Sentinel forgot keeps the master it had.
			w.problem(g, sentinel, "sentinel does not know the group (check groups: against the sentinel's monitor names)", "", nil)
		case a.addr == g.addr:
			g.problem = ""
		default:
			if err := checkMaster(w.ctx, a.addr, w.auth, w.timeout); err != nil {
				if w.ctx.Err() != nil {
					return w.ctx.Err()
				}
				w.problem(g, sentinel, "master not verified; asking again at the next heartbeat", a.addr, err)
				continue
			}
			reason := ReasonHeartbeat
			if g.addr == "" {
				reason = ReasonDiscovered
			}
			w.setMaster(g, a.addr, reason, sentinel)
		}
	}
	return nil
}

// problem logs a group's problem at Warn, unless it is the one logged
// last, which is logged at Debug.
func (w *Watcher) problem(g *group, sentinel, msg, addr string, err error) {
	key := fmt.Sprint(msg, addr, err)
	level := slog.LevelWarn
	if key == g.problem {
		level = slog.LevelDebug
	}
	g.problem = key
	args := []any{"group", g.name, "sentinel", sentinel, "addr", addr, "current", g.addr}
	if err != nil {
		args = append(args, "err", err)
	}
	w.log.Log(w.ctx, level, msg, args...)
}

// setMaster makes addr the group's master and reports it, unless it is the
// master already.
func (w *Watcher) setMaster(g *group, addr, reason, sentinel string) {
	old := g.addr
	if addr == old {
		return
	}
	w.mu.Lock()
	g.addr = addr
	w.mu.Unlock()
	g.problem = ""
	if old == "" {
		w.unserved--
		if w.unserved == 0 {
			close(w.ready)
		}
		w.log.Info("master discovered", "group", g.name, "addr", addr, "reason", reason, "sentinel", sentinel)
	} else {
		w.log.Info("master switched", "group", g.name, "addr", addr, "old", old, "reason", reason, "sentinel", sentinel)
	}
	if w.onChange != nil {
		w.onChange(Event{Group: g.name, Addr: addr, OldAddr: old, Reason: reason, Sentinel: sentinel})
	}
}

// clientName is the CLIENT SETNAME of the Watcher's connections:
// "shardproxy-<pool>", with every byte Redis does not allow in a name
// (spaces, newlines, anything outside printable ASCII) replaced by '_'.
func clientName(pool string) string {
	b := []byte("shardproxy-" + pool)
	for i, c := range b {
		if c <= ' ' || c > '~' {
			b[i] = '_'
		}
	}
	return string(b)
}
