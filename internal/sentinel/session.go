package sentinel

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"
)

// switchChannel is where Sentinel announces a new master (sentinel.c,
// sentinelEvent "+switch-master").
const switchChannel = "+switch-master"

// errNoPong reports a subscription that did not answer PING in time.
var errNoPong = errors.New("no reply to PING on the subscription")

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
	// New addresses are checked in parallel, and each verdict is taken as
	// it comes: a candidate that accepts but never answers delays only its
	// own group, not the groups after it.
	type verdict struct {
		i   int
		err error
	}
	verdicts := make(chan verdict, len(w.groups))
	checking := 0
	for i, g := range w.groups {
		a := answers[i]
		switch {
		case !a.known:
			// A group the Sentinel forgot keeps the master it had.
			w.problem(g, sentinel, "sentinel does not know the group (check groups: against the sentinel's monitor names)", "", nil)
		case a.addr == g.addr:
			g.problem = ""
		default:
			checking++
			go func() { verdicts <- verdict{i, checkMaster(w.ctx, a.addr, w.auth, w.timeout)} }()
		}
	}
	// Every check is bounded by the timeout, or ends when the Watcher
	// closes (the context closes its connection), so this loop ends too.
	var cancelled bool
	for range checking {
		v := <-verdicts
		g, addr := w.groups[v.i], answers[v.i].addr
		switch {
		case cancelled || w.ctx.Err() != nil:
			cancelled = true
		case v.err != nil:
			w.problem(g, sentinel, "master not verified; asking again at the next heartbeat", addr, v.err)
		default:
			reason := ReasonHeartbeat
			if g.addr == "" {
				reason = ReasonDiscovered
			}
			w.setMaster(g, addr, reason, sentinel)
		}
	}
	if cancelled {
		return w.ctx.Err()
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
		w.log.Info("master discovered", "server", g.name, "addr", addr, "reason", reason, "sentinel", sentinel)
	} else {
		w.log.Info("master switched", "server", g.name, "addr", addr, "old", old, "reason", reason, "sentinel", sentinel)
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
