package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shardproxy/shardproxy/internal/config"
)

// Pool serves one configured pool: one listener, its client sessions and
// (with the data path) its servers.
type Pool struct {
	// immutable after newPool
	cfg    *config.Pool
	opts   Options
	logger *slog.Logger

	clients atomic.Int64 // current client connections, for client_connections

	mu       sync.Mutex // guards the fields below
	ln       net.Listener
	conns    map[net.Conn]struct{}
	closing  bool
	sessions sync.WaitGroup
	acceptWG sync.WaitGroup
}

func newPool(cfg *config.Pool, opts Options) *Pool {
	return &Pool{
		cfg:    cfg,
		opts:   opts,
		logger: opts.Logger.With("pool", cfg.Name),
		conns:  make(map[net.Conn]struct{}),
	}
}

// Name returns the pool's name from the configuration.
func (p *Pool) Name() string { return p.cfg.Name }

// Addr returns the address the pool listens on, once started.
func (p *Pool) Addr() net.Addr {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		return nil
	}
	return p.ln.Addr()
}

func (p *Pool) listen() error {
	ln, err := listen(p.cfg.Listen, p.cfg.Backlog)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	return nil
}

func (p *Pool) startAccepting() {
	p.acceptWG.Add(1)
	go p.acceptLoop(p.ln)
	p.logger.Info("pool listening", "listen", p.cfg.Listen.String(), "redis", p.cfg.Redis, "servers", len(p.cfg.Servers))
}

func (p *Pool) closeListener() {
	p.mu.Lock()
	ln := p.ln
	p.closing = true
	p.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	p.acceptWG.Wait()
}

// acceptLoop accepts clients until the listener is closed. Temporary errors
// (out of file descriptors) back off instead of spinning.
func (p *Pool) acceptLoop(ln net.Listener) {
	defer p.acceptWG.Done()
	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			p.logger.Warn("accept failed", "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		p.admit(conn)
	}
}

// admit starts a session for conn, or turns it away when the pool is at
// client_connections (twemproxy parses that key but never enforces it).
func (p *Pool) admit(conn net.Conn) {
	n := p.clients.Add(1)
	if limit := p.cfg.ClientConnections; limit > 0 && n > int64(limit) {
		p.clients.Add(-1)
		p.logger.Warn("client refused: client_connections reached", "client", conn.RemoteAddr().String(), "limit", limit)
		_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = conn.Write(p.errorReply("max number of clients reached"))
		conn.Close()
		return
	}
	p.mu.Lock()
	if p.closing {
		p.mu.Unlock()
		p.clients.Add(-1)
		conn.Close()
		return
	}
	p.conns[conn] = struct{}{}
	p.sessions.Add(1)
	p.mu.Unlock()

	go func() {
		defer func() {
			p.mu.Lock()
			delete(p.conns, conn)
			p.mu.Unlock()
			p.clients.Add(-1)
			p.sessions.Done()
		}()
		p.serveClient(conn)
	}()
}

// serveClient is the client session. The data path is not built yet: the
// client is told so in its protocol, and what it sends is discarded until it
// hangs up or the proxy shuts down (an idle session has nothing in flight,
// so stopping it is closing it).
func (p *Pool) serveClient(conn net.Conn) {
	client := conn.RemoteAddr().String()
	p.logger.Info("client connected", "client", client)
	_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = conn.Write(p.errorReply("shardproxy: request forwarding is not implemented in this build"))
	_, err := io.Copy(io.Discard, conn)
	conn.Close()
	p.logger.Info("client closed", "client", client, "err", err)
}

// errorReply formats a proxy-made error in the pool's protocol.
func (p *Pool) errorReply(msg string) []byte {
	if p.cfg.Redis {
		return []byte("-ERR " + msg + "\r\n")
	}
	return []byte("SERVER_ERROR " + msg + "\r\n")
}

// drain stops the pool's sessions and waits for them to end, or closes them
// when ctx is done. Sessions with nothing in flight stop at once.
func (p *Pool) drain(ctx context.Context) error {
	p.mu.Lock()
	for c := range p.conns {
		// Until the data path exists no session ever has a request in
		// flight, so stopping one is closing it.
		c.Close()
	}
	p.mu.Unlock()
	done := make(chan struct{})
	go func() {
		p.sessions.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	<-done
	return ctx.Err()
}
