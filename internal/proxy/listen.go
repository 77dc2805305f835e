package proxy

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/shardproxy/shardproxy/internal/config"
)

// listen opens a listening socket for addr with the pool's backlog. Go's
// net.Listen always uses the kernel's somaxconn, so the socket is made by
// hand to honour twemproxy's `backlog` key. A unix socket path left over
// from an earlier run is removed first, as nutcracker does, and the socket
// gets the configured mode.
func listen(addr config.Address, backlog int) (net.Listener, error) {
	var (
		family int
		sa     syscall.Sockaddr
	)
	switch addr.Network {
	case "unix":
		if err := removeStaleSocket(addr.Path); err != nil {
			return nil, err
		}
		family, sa = syscall.AF_UNIX, &syscall.SockaddrUnix{Name: addr.Path}
	default:
		tcp, err := net.ResolveTCPAddr("tcp", addr.String())
		if err != nil {
			return nil, err
		}
		if ip4 := tcp.IP.To4(); ip4 != nil || tcp.IP == nil {
			s := &syscall.SockaddrInet4{Port: tcp.Port}
			copy(s.Addr[:], ip4)
			family, sa = syscall.AF_INET, s
		} else {
			s := &syscall.SockaddrInet6{Port: tcp.Port}
			copy(s.Addr[:], tcp.IP.To16())
			if tcp.Zone != "" {
				if ifi, err := net.InterfaceByName(tcp.Zone); err == nil {
					s.ZoneId = uint32(ifi.Index)
				}
			}
			family, sa = syscall.AF_INET6, s
		}
	}

	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC|syscall.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	file := os.NewFile(uintptr(fd), "listener "+addr.String())
	defer file.Close() // net.FileListener holds its own duplicate
	if family != syscall.AF_UNIX {
		if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
			return nil, os.NewSyscallError("setsockopt", err)
		}
	}
	if err := syscall.Bind(fd, sa); err != nil {
		return nil, os.NewSyscallError("bind", err)
	}
	if family == syscall.AF_UNIX && addr.Mode != 0 {
		if err := os.Chmod(addr.Path, addr.Mode); err != nil {
			return nil, err
		}
	}
	if backlog <= 0 {
		backlog = syscall.SOMAXCONN
	}
	if err := syscall.Listen(fd, backlog); err != nil {
		return nil, os.NewSyscallError("listen", err)
	}
	ln, err := net.FileListener(file)
	if err != nil {
		return nil, err
	}
	if ul, ok := ln.(*net.UnixListener); ok {
		// We bound the path ourselves, so Close must remove it.
		ul.SetUnlinkOnClose(true)
	}
	return ln, nil
}

// removeStaleSocket removes path if it is a unix socket; any other kind of
// file is left alone and reported, so a typo cannot delete a regular file.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s exists and is not a unix socket", path)
	}
	return os.Remove(path)
}

// ListenKey names a listen address the way reloads and upgrades match
// listeners: "unix:" and the path, or "tcp:" and host:port with the host
// resolved when it is a name, so that "localhost:22121" written in a new
// file still finds the socket bound for it.
func ListenKey(a config.Address) string {
	if a.Network == "unix" {
		return "unix:" + a.Path
	}
	if tcp, err := net.ResolveTCPAddr("tcp", a.String()); err == nil {
		return "tcp:" + tcp.String()
	}
	return "tcp:" + a.String()
}

// listener is one listening socket and the pool that serves its clients
// now. A reload that keeps the address keeps the listener, so the socket
// is never closed and no connect is refused, and points it at the new
// pool: the accept goroutine reads the pool for every client.
type listener struct {
	key  string
	addr config.Address
	ln   net.Listener
	pool atomic.Pointer[Pool]
	// inherited: the socket was handed over by an upgrading process, which
	// still serves it until this one's Start has succeeded.
	inherited bool

	accepting sync.WaitGroup // the accept goroutine
	closeOnce sync.Once
}

// openListener binds addr, or adopts the socket an upgrading process
// handed over for it (inherited, keyed by ListenKey; the entry is taken
// out of the map).
func openListener(addr config.Address, backlog int, inherited map[string]*os.File) (*listener, error) {
	key := ListenKey(addr)
	if f, ok := inherited[key]; ok {
		delete(inherited, key)
		ln, err := net.FileListener(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("inherited socket for %s: %w", addr.String(), err)
		}
		if ul, ok := ln.(*net.UnixListener); ok {
			// This process owns the path now, as if it had bound it.
			ul.SetUnlinkOnClose(true)
		}
		return &listener{key: key, addr: addr, ln: ln, inherited: true}, nil
	}
	ln, err := listen(addr, backlog)
	if err != nil {
		return nil, err
	}
	return &listener{key: key, addr: addr, ln: ln}, nil
}

// serve starts accepting clients for the listener's pool.
func (l *listener) serve() {
	l.accepting.Add(1)
	go l.acceptLoop()
}

// close stops accepting (connects are refused from now on) and waits for
// the accept goroutine. unlink false leaves a unix socket's path in place
// for the process it was handed to.
func (l *listener) close(unlink bool) {
	l.closeOnce.Do(func() {
		if ul, ok := l.ln.(*net.UnixListener); ok && !unlink {
			ul.SetUnlinkOnClose(false)
		}
		l.ln.Close()
	})
	l.accepting.Wait()
}

// file returns a duplicate of the listening socket's descriptor, to hand
// to a new process.
func (l *listener) file() (*os.File, error) {
	type filer interface{ File() (*os.File, error) }
	f, ok := l.ln.(filer)
	if !ok {
		return nil, fmt.Errorf("listener %s has no file descriptor", l.key)
	}
	return f.File()
}

// acceptLoop accepts clients until the listener is closed, each for the
// pool the listener serves at that moment. Out of file descriptors, it
// turns clients away at once through the spare descriptor
// (refuseClients); other errors back off instead of spinning.
func (l *listener) acceptLoop() {
	defer l.accepting.Done()
	var rc syscall.RawConn
	if sc, ok := l.ln.(syscall.Conn); ok {
		rc, _ = sc.SyscallConn()
	}
	var backoff time.Duration
	for {
		conn, err := l.ln.Accept()
		p := l.pool.Load()
		if err == nil {
			backoff = 0
			if p.reserve.missing() {
				p.reserve.fill()
			}
			p.admit(conn)
			continue
		}
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if rc != nil && outOfDescriptors(err) {
			if !p.refuseClients(rc, err) {
				return
			}
			continue
		}
		backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
		p.logger.Warn("accept failed", "err", err, "retry_in", backoff)
		time.Sleep(backoff)
	}
}
