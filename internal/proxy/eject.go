package proxy

import (
	"errors"
	"net"
	"time"
)

// Ejection (auto_eject_hosts) with twemproxy's semantics: every closed or
// failed server connection (refused, reset, EOF, timeout) is one failure of
// its server; a reply resets the count; at server_failure_limit consecutive
// failures the server leaves the ring, which is rebuilt from the live
// servers exactly as twemproxy rebuilds it, so keys move to the same
// servers as under nutcracker.
//
// Unlike twemproxy, a server does not rejoin by having the next client
// request sent to it after server_retry_timeout: a background probe (PING,
// or version for Memcached) decides, and the server rejoins only when the
// probe is answered. A failed probe keeps it out for another retry period.

// minProbeInterval keeps a server_retry_timeout of 0 from probing a dead
// server in a busy loop.
const minProbeInterval = 10 * time.Millisecond

// failure counts one connection failure of s and ejects it at the limit.
// cause is what broke the connection; it only words the log line.
func (s *server) failure(cause error) {
	p := s.pool()
	if !p.ejects() {
		return
	}
	n := s.failures.Add(1)
	if int(n) < p.cfg.ServerFailureLimit {
		return
	}
	s.mu.Lock()
	if s.ejected || p.isClosing() {
		s.mu.Unlock()
		return
	}
	s.ejected = true
	s.failures.Store(0)
	s.mu.Unlock()

	s.stats.ejectedAt.Store(time.Now().UnixMicro())
	p.stats.serverEjects.Add(1)
	p.rebuildRing()
	p.logger.Info("server ejected", "server", s.name, "reason", errorText(cause),
		"failures", n, "retry_in", p.cfg.ServerRetryTimeout)
	p.goBackground(s.probeLoop)
}

// ejects reports whether the pool ejects failing servers. A Sentinel pool
// never does: its servers are groups, whose failing master Sentinel
// replaces, and ejecting a group would move its keys to other groups.
func (p *Pool) ejects() bool { return p.cfg.AutoEjectHosts && !p.cfg.Sentinel() }

// succeeded resets the failure count: called for every reply, so it only
// reads in the common case.
func (s *server) succeeded() {
	if s.failures.Load() != 0 {
		s.failures.Store(0)
	}
}

// isEjected reports whether s is out of the ring.
func (s *server) isEjected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ejected
}

// liveServers appends the pool's servers in the ring (not ejected), in the
// pool's order, to dst: where a command that must reach every server goes.
func (p *Pool) liveServers(dst []*server) []*server {
	for _, srv := range p.servers {
		if !srv.isEjected() {
			dst = append(dst, srv)
		}
	}
	return dst
}

// probeLoop probes an ejected server every server_retry_timeout until it
// answers, then puts it back in the ring. It ends early when the pool shuts
// down.
func (s *server) probeLoop() {
	p := s.pool()
	interval := max(p.cfg.ServerRetryTimeout, minProbeInterval)
	t := time.NewTimer(interval)
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-t.C:
		}
		if s.pool() != p {
			return // a reload moved the server: the new pool probes it
		}
		err := s.probe()
		if err == nil {
			break
		}
		p.logger.Info("ejected server still failing", "server", s.name, "reason", errorText(err),
			"retry_in", interval)
		t.Reset(interval)
	}
	s.mu.Lock()
	s.ejected = false
	s.mu.Unlock()
	s.failures.Store(0)
	p.rebuildRing()
	p.logger.Info("server rejoined", "server", s.name, "reason", "health probe answered")
}

// probeTimeout bounds a probe when the pool has no timeout: a stopped
// (SIGSTOP) server accepts connections but never answers.
const probeTimeout = time.Second

// probe dials the server on a connection of its own, sends the pool's
// prelude (AUTH, SELECT) and the protocol's health check, and waits for
// every reply. Any well-formed reply, even an error, means the server is
// up: a wrong password is a configuration problem, and client requests
// will show the server's error.
func (s *server) probe() error {
	p := s.pool()
	timeout := p.cfg.Timeout
	if timeout <= 0 {
		timeout = probeTimeout
	}
	addr := s.address()
	conn, err := net.DialTimeout(addr.Network, addr.String(), timeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	check, head := p.proto.healthCheck()
	var out []byte
	for _, pre := range p.prelude {
		out = append(out, pre...)
	}
	out = append(out, check...)
	if _, err := conn.Write(out); err != nil {
		return err
	}
	parser := p.proto.newReplyParser()
	want := len(p.prelude) + 1
	buf := make([]byte, 0, 512)
	for want > 0 {
		if len(buf) == cap(buf) {
			if cap(buf) >= maxReplyLine {
				// Every reply here is one short line.
				return errors.New("health check replies too long")
			}
			buf = append(make([]byte, 0, 2*cap(buf)), buf...)
		}
		n, err := conn.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		for want > 0 {
			h := &request{}
			if want == 1 {
				h = head
			}
			m, perr := parser.scan(buf, h)
			if perr == errIncomplete {
				break
			}
			if perr != nil {
				return perr
			}
			buf = buf[m:]
			want--
		}
		if want > 0 && err != nil {
			return err
		}
	}
	return nil
}

// rebuildRing publishes a ring of the servers that are not ejected.
// Rebuilds are rare and serialised; readers never wait (the ring is an
// atomic pointer).
func (p *Pool) rebuildRing() {
	p.ringMu.Lock()
	defer p.ringMu.Unlock()
	old := p.ring.Load()
	if old == nil {
		return
	}
	live := make([]bool, len(p.servers))
	n := 0
	for i, s := range p.servers {
		live[i] = !s.isEjected()
		if live[i] {
			n++
		}
	}
	ring, err := old.Rebuild(live)
	if err != nil {
		p.logger.Error("ring rebuild failed", "err", err)
		return
	}
	p.ring.Store(ring)
	p.logger.Info("ring rebuilt", "live_servers", n, "servers", len(p.servers))
}
