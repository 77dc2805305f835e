package sentinel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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

// Errors of New.
var (
	ErrNoSentinels = errors.New("no sentinels")
	ErrNoGroups    = errors.New("no groups")
)

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
	OldAddr  string // the previous one; "" for the group's first master
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
