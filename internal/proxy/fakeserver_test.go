package proxy

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/shardproxy/shardproxy/internal/memcache"
	"github.com/shardproxy/shardproxy/internal/resp"
)

// fakeServer is a hostile or broken server for the proxy to talk to: a
// listener on 127.0.0.1 (a port from the kernel, see testutil.FreePort)
// that answers each request with fixed bytes chosen by its key.
type fakeServer struct {
	addr string
	ln   net.Listener
	// parse returns the length of the first complete request in b and its
	// key (for a request without one, its command name), or 0 when b holds
	// no complete request yet. nil: the server never reads at all.
	parse  func(b []byte) (n int, key string)
	answer func(key string) fakeReply

	accepted atomic.Int64 // connections accepted
	// dropped counts connections the proxy closed: an end of stream read,
	// or a write refused.
	dropped atomic.Int64

	done  chan struct{}
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// fakeReply is what a fake server writes for one request.
type fakeReply struct {
	data []byte
	// stream, if not nil, is written again and again after data, until
	// the proxy closes the connection.
	stream []byte
	// mute: answer nothing more on this connection (but read on).
	mute bool
}

func startFakeServer(t testing.TB, parse func([]byte) (int, string), answer func(string) fakeReply) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeServer{addr: ln.Addr().String(), ln: ln, parse: parse, answer: answer,
		done: make(chan struct{}), conns: make(map[net.Conn]struct{})}
	f.wg.Add(1)
	go f.acceptLoop()
	t.Cleanup(f.close)
	return f
}

func (f *fakeServer) acceptLoop() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		select {
		case <-f.done:
			f.mu.Unlock()
			c.Close()
			return
		default:
		}
		f.conns[c] = struct{}{}
		f.wg.Add(1)
		f.mu.Unlock()
		f.accepted.Add(1)
		go f.serve(c)
	}
}

func (f *fakeServer) close() {
	f.mu.Lock()
	close(f.done)
	f.ln.Close()
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

// lost records why a connection ended: the proxy's doing, or our close.
func (f *fakeServer) lost(err error) {
	if !errors.Is(err, net.ErrClosed) {
		f.dropped.Add(1)
	}
}

func (f *fakeServer) serve(c net.Conn) {
	defer f.wg.Done()
	defer func() {
		f.mu.Lock()
		delete(f.conns, c)
		f.mu.Unlock()
		c.Close()
	}()
	if f.parse == nil {
		<-f.done // a server that takes connections and never reads them
		return
	}
	var pending []byte
	buf := make([]byte, 64<<10)
	mute := false
	for {
		m, err := c.Read(buf)
		if !mute {
			pending = append(pending, buf[:m]...)
		}
		for !mute {
			n, key := f.parse(pending)
			if n == 0 {
				break
			}
			pending = pending[n:]
			rep := f.answer(key)
			if _, werr := c.Write(rep.data); werr != nil {
				f.lost(werr)
				return
			}
			for rep.stream != nil {
				if _, werr := c.Write(rep.stream); werr != nil {
					f.lost(werr)
					return
				}
			}
			mute = rep.mute
		}
		if err != nil {
			f.lost(err)
			return
		}
	}
}

// fakeRedisParse frames the requests the proxy sends a Redis server.
func fakeRedisParse(b []byte) (int, string) {
	var req resp.Request
	n, err := resp.ParseRequest(b, &req)
	if err != nil {
		return 0, "" // incomplete: the proxy sends nothing malformed
	}
	if len(req.Args) > 1 {
		return n, string(req.Args[1])
	}
	return n, string(req.Args[0])
}

// fakeMemcacheParse frames the requests the proxy sends a memcached.
func fakeMemcacheParse(b []byte) (int, string) {
	var req memcache.Request
	n, err := memcache.ParseRequest(b, &req)
	if err != nil {
		return 0, ""
	}
	if len(req.Keys) > 0 {
		return n, string(req.Keys[0])
	}
	return n, string(req.Name)
}
