package stats

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const (
	// MinInterval is the shortest aggregation interval: a smaller
	// ServerConfig.Interval (nutcracker's -i 0 or -i 1, say) is raised to
	// it, so that clients reading in a loop make at most 100 collections a
	// second.
	MinInterval = 10 * time.Millisecond
	// DefaultHTTPWait is how long a new connection may take to send the
	// start of an HTTP request before it is answered the nutcracker way.
	DefaultHTTPWait = 100 * time.Millisecond

	// maxSniffing bounds the connections waiting for their first bytes;
	// beyond it, new ones get the JSON at once, as from nutcracker.
	maxSniffing = 64
	// writeTimeout bounds writing the JSON to a raw client.
	writeTimeout = 5 * time.Second
	// lingerTimeout bounds how long a raw connection is drained after the
	// JSON was sent (see serveRaw).
	lingerTimeout = 500 * time.Millisecond
	// closeWait bounds how long Close waits for the goroutines to end.
	closeWait = 2 * time.Second
)

// ServerConfig configures a Server. Only Addr is required.
type ServerConfig struct {
	// Addr is the host:port to listen on, from -a and -s
	// (nutcracker: 0.0.0.0:22222). Port 0 picks a free port; see Addr.
	Addr string
	// Listener, if set, is served instead of listening on Addr: the stats
	// socket a binary upgrade handed over from the process this one
	// replaces (see File). The Server owns it from Start on.
	Listener net.Listener
	// Interval is how old the JSON may be (-i): a reader gets the
	// snapshot taken by an earlier reader if it is younger than Interval,
	// else a new one. Nothing is collected while nobody reads. Below
	// MinInterval (including 0) it is MinInterval. /metrics is always
	// collected afresh.
	Interval time.Duration
	// Source provides the counters; nil serves a snapshot without pools.
	Source Source
	// Service is the JSON's "service"; "" means "nutcracker", the value
	// monitoring tools look for.
	Service string
	// Version is the JSON's "version" and the build_info metric's label.
	Version string
	// Hostname is the JSON's "source"; "" means os.Hostname(), or
	// "unknown" if that fails, as nutcracker does.
	Hostname string
	// Started is when the proxy started, for "uptime"; zero means the
	// time NewServer was called.
	Started time.Time
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// SlowLog is served at /slowlog; nil serves an empty log.
	SlowLog *SlowLog
	// Logger receives connection errors (at debug level); nil discards.
	Logger *slog.Logger
	// Registry is what /metrics serves. nil: NewServer makes one with the
	// Go runtime and process collectors. Either way NewServer registers
	// the stats collector and shardproxy_build_info in it.
	Registry *prometheus.Registry
	// HTTPWait is how long a new connection may take to send the start
	// of an HTTP request; one that sends nothing in that time, or sends
	// anything else, gets the JSON and is closed, as from nutcracker.
	// 0 means DefaultHTTPWait; negative means never wait: no HTTP, the
	// JSON at once.
	HTTPWait time.Duration
}

// Server is the stats port: the nutcracker JSON to any client that does
// not speak HTTP within HTTPWait, and HTTP/1.1 to one that does:
//
//	GET /, GET /stats   the JSON (application/json)
//	GET /metrics        Prometheus text exposition
//	GET /slowlog        the slow log as JSON
//
// Lock order: cacheMu, then collectMu; mu is never held with either.
type Server struct {
	// Immutable after NewServer.
	cfg      ServerConfig
	interval time.Duration
	httpWait time.Duration
	service  string
	hostname string
	started  time.Time
	log      *slog.Logger
	reg      *prometheus.Registry
	regErr   error // from registering the collectors; Start returns it
	http     *http.Server

	collectMu sync.Mutex // serializes Source.Collect

	cacheMu sync.Mutex
	cached  []byte    // guarded by cacheMu; never modified once stored
	cacheAt time.Time // guarded by cacheMu

	mu       sync.Mutex
	ln       net.Listener          // guarded by mu
	httpLn   *connListener         // guarded by mu
	conns    map[net.Conn]struct{} // guarded by mu: every open connection, raw or HTTP
	sniffing int                   // guarded by mu
	closed   bool                  // guarded by mu
	wg       sync.WaitGroup        // the accept loop, the HTTP server and raw handlers
	accepts  sync.WaitGroup        // the accept loop alone, for Shutdown
	handlers sync.WaitGroup        // serveConn goroutines alone, for Shutdown
}

// NewServer returns a Server for cfg; Start makes it listen.
func NewServer(cfg ServerConfig) *Server {
	s := &Server{
		cfg:      cfg,
		interval: max(cfg.Interval, MinInterval),
		httpWait: cfg.HTTPWait,
		service:  cfg.Service,
		hostname: cfg.Hostname,
		started:  cfg.Started,
		log:      cfg.Logger,
		reg:      cfg.Registry,
		conns:    make(map[net.Conn]struct{}),
	}
	if s.httpWait == 0 {
		s.httpWait = DefaultHTTPWait
	}
	if s.service == "" {
		s.service = "nutcracker"
	}
	if s.hostname == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "unknown"
		}
		s.hostname = h
	}
	if s.started.IsZero() {
		s.started = s.now()
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	var cs []prometheus.Collector
	if s.reg == nil {
		s.reg = prometheus.NewRegistry()
		cs = append(cs, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	cs = append(cs, newCollector(s.collect, cfg.SlowLog), newBuildInfo(s.service, cfg.Version))
	for _, c := range cs {
		if err := s.reg.Register(c); err != nil {
			s.regErr = errors.Join(s.regErr, err)
		}
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.serveJSON)
	mux.HandleFunc("GET /stats", s.serveJSON)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
		Timeout:       10 * time.Second,
	}))
	mux.HandleFunc("GET /slowlog", s.serveSlowLog)
	s.http = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	return s
}

// Registry returns the registry /metrics serves, for the program to add
// its own collectors.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// Start listens on Addr, or takes ServerConfig.Listener, and serves in the
// background. It returns an error naming the address if it cannot listen,
// or one from registering the collectors.
func (s *Server) Start() error {
	ln := s.cfg.Listener
	if s.regErr != nil {
		if ln != nil {
			ln.Close()
		}
		return fmt.Errorf("stats server: registering metrics: %w", s.regErr)
	}
	if ln == nil {
		var err error
		ln, err = net.Listen("tcp", s.cfg.Addr)
		if err != nil {
			var oe *net.OpError
			if errors.As(err, &oe) {
				// "listen tcp 127.0.0.1:22222: bind: address already in use"
				// already names the address.
				return fmt.Errorf("stats server: %w", err)
			}
			return fmt.Errorf("stats server on %s: %w", s.cfg.Addr, err)
		}
	}
	s.mu.Lock()
	if s.closed || s.ln != nil {
		s.mu.Unlock()
		ln.Close()
		return errors.New("stats server: already started or closed")
	}
	s.ln = ln
	s.httpLn = newConnListener(ln.Addr())
	s.wg.Add(2)
	s.accepts.Add(1)
	s.mu.Unlock()
	go s.acceptLoop(ln)
	go func() {
		defer s.wg.Done()
		_ = s.http.Serve(s.httpLn) // returns when httpLn is closed
	}()
	s.log.Info("stats server listening", "addr", ln.Addr().String())
	return nil
}

// Addr returns the address the server listens on, nil before Start.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Close stops listening, closes every connection (idle HTTP clients and
// raw clients included) and waits, at most two seconds, for the
// goroutines serving them.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	var err error
	if s.ln != nil {
		if err = s.ln.Close(); errors.Is(err, net.ErrClosed) {
			err = nil // Shutdown closed it
		}
		s.httpLn.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	if herr := s.http.Close(); err == nil {
		err = herr
	}

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	timer := time.NewTimer(closeWait)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		return fmt.Errorf("stats server: still serving %v after closing", closeWait)
	}
	return err
}

// File returns a duplicate of the listening socket's descriptor, for a
// binary upgrade to hand to the new process; the caller closes it.
func (s *Server) File() (*os.File, error) {
	s.mu.Lock()
	ln, closed := s.ln, s.closed
	s.mu.Unlock()
	if ln == nil || closed {
		return nil, errors.New("stats server: not listening")
	}
	f, ok := ln.(interface{ File() (*os.File, error) })
	if !ok {
		return nil, fmt.Errorf("stats server: listener %s has no file descriptor", ln.Addr())
	}
	return f.File()
}

// Shutdown stops accepting and lets the connections already accepted get
// their answer — the JSON, or the HTTP requests under way — until ctx is
// done; then it closes what is left as Close does. A binary upgrade calls
// it once the new process serves the same socket: a client accepted here
// is answered here, a later one there, and none sees its connection
// dropped.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	ln, closed := s.ln, s.closed
	s.mu.Unlock()
	if closed {
		return nil
	}
	var err error
	if ln != nil {
		ln.Close()
		s.accepts.Wait() // no serveConn starts after this
		done := make(chan struct{})
		go func() {
			s.handlers.Wait()
			close(done)
		}()
		select {
		case <-done:
			// Every HTTP connection has reached the HTTP server.
			err = s.http.Shutdown(ctx)
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	return err
}

func (s *Server) acceptLoop(ln net.Listener) {
	defer s.wg.Done()
	defer s.accepts.Done()
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and the like: back off as net/http does, rather than
			// spin.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warn("stats server: accept failed", "err", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		sniff, ok := s.track(c)
		if !ok {
			c.Close()
			return
		}
		go s.serveConn(c, sniff)
	}
}

// track registers a new connection and reports whether it may wait for
// HTTP (sniff), or false if the server is closed.
func (s *Server) track(c net.Conn) (sniff, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.handlers.Add(1)
	sniff = s.httpWait > 0 && s.sniffing < maxSniffing
	if sniff {
		s.sniffing++
	}
	return sniff, true
}

// untrack forgets a connection; its owner closes it.
func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// serveConn decides between HTTP and nutcracker's raw JSON.
func (s *Server) serveConn(c net.Conn, sniff bool) {
	defer s.wg.Done()
	defer s.handlers.Done()
	var br *bufio.Reader
	isHTTP := false
	if sniff {
		br, isHTTP = s.sniff(c)
		s.mu.Lock()
		s.sniffing--
		s.mu.Unlock()
	}
	if !isHTTP {
		s.serveRaw(c)
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	pc := &peekedConn{Conn: c, r: br, s: s}
	s.mu.Lock()
	ln := s.httpLn
	s.mu.Unlock()
	if !ln.push(pc) {
		pc.Close()
	}
}

// httpMethods are the request lines' beginnings that mark HTTP.
func httpMethods() [][]byte {
	return [][]byte{[]byte("GET "), []byte("HEAD "), []byte("POST "), []byte("PUT "), []byte("DELETE "),
		[]byte("OPTIONS "), []byte("PATCH "), []byte("TRACE "), []byte("CONNECT ")}
}

// sniff waits up to httpWait for the start of an HTTP request. It returns
// the reader holding what was read, and whether it is HTTP; on a timeout,
// an EOF or any other byte it returns false.
func (s *Server) sniff(c net.Conn) (*bufio.Reader, bool) {
	if err := c.SetReadDeadline(time.Now().Add(s.httpWait)); err != nil {
		return nil, false
	}
	br := bufio.NewReader(c)
	methods := httpMethods()
	for {
		n := br.Buffered()
		if n > 0 {
			got, _ := br.Peek(n)
			switch classifyMethod(got, methods) {
			case 1:
				return br, true
			case -1:
				return br, false
			}
		}
		if _, err := br.Peek(n + 1); err != nil {
			return br, false
		}
	}
}

// classifyMethod returns 1 if b begins with one of methods, -1 if it
// cannot, and 0 if it may once more bytes arrive.
func classifyMethod(b []byte, methods [][]byte) int {
	maybe := false
	for _, m := range methods {
		if bytes.HasPrefix(b, m) {
			return 1
		}
		if bytes.HasPrefix(m, b) {
			maybe = true
		}
	}
	if maybe {
		return 0
	}
	return -1
}

// serveRaw answers as nutcracker does: the JSON in one write, then close.
// Before closing it sends FIN and reads until the client closes too (at
// most lingerTimeout): closing a socket with unread bytes, which a client
// that sent something would leave, makes the kernel send a reset that can
// destroy the JSON before the client reads it.
func (s *Server) serveRaw(c net.Conn) {
	defer s.untrack(c)
	defer c.Close()
	_ = c.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := c.Write(s.statsJSON()); err != nil {
		s.log.Debug("stats server: write failed", "client", c.RemoteAddr().String(), "err", err)
		return
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	_ = c.SetReadDeadline(time.Now().Add(lingerTimeout))
	_, _ = io.Copy(io.Discard, io.LimitReader(c, 1<<20))
}

// statsJSON returns the JSON, collected afresh if the last one is older
// than the interval. The returned slice is never modified.
func (s *Server) statsJSON() []byte {
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	now := s.now()
	if s.cached != nil && now.Sub(s.cacheAt) < s.interval && !now.Before(s.cacheAt) {
		return s.cached
	}
	snap := Snapshot{
		Service:   s.service,
		Source:    s.hostname,
		Version:   s.cfg.Version,
		Uptime:    int64(now.Sub(s.started) / time.Second),
		Timestamp: now.Unix(),
	}
	s.collect(&snap)
	snap.Sort()
	s.cached = AppendJSON(make([]byte, 0, len(s.cached)+64), &snap)
	s.cacheAt = now
	return s.cached
}

// collect asks the Source, one call at a time.
func (s *Server) collect(snap *Snapshot) {
	if s.cfg.Source == nil {
		return
	}
	s.collectMu.Lock()
	defer s.collectMu.Unlock()
	s.cfg.Source.Collect(snap)
}

func (s *Server) now() time.Time {
	if s.cfg.Now != nil {
		return s.cfg.Now()
	}
	return time.Now()
}

func (s *Server) serveJSON(w http.ResponseWriter, _ *http.Request) {
	b := s.statsJSON()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}

func (s *Server) serveSlowLog(w http.ResponseWriter, _ *http.Request) {
	b, err := s.cfg.SlowLog.MarshalJSON()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(append(b, '\n'))
}

// peekedConn is a connection handed to the HTTP server with the bytes
// sniff already read. Its Close also forgets it in the Server.
type peekedConn struct {
	net.Conn
	r    *bufio.Reader
	s    *Server
	once sync.Once
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func (c *peekedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.s.untrack(c.Conn) })
	return err
}

// connListener is the net.Listener the HTTP server serves: it yields the
// connections that sniff found speaking HTTP.
type connListener struct {
	addr net.Addr
	ch   chan net.Conn // unbuffered: a pushed connection is accepted or refused, never stranded
	done chan struct{}
	once sync.Once
}

func newConnListener(addr net.Addr) *connListener {
	return &connListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

// push hands c to Accept; it returns false once the listener is closed.
func (l *connListener) push(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *connListener) Addr() net.Addr { return l.addr }
