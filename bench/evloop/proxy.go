//go:build linux

package main

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"

	"golang.org/x/sys/unix"
)

// Proxy is the prototype: Loops event loops, each with its own listening
// socket on the same address (SO_REUSEPORT: the kernel spreads new
// connections over them), its own clients and its own connection to every
// server.
type Proxy struct {
	// Immutable after New.
	loops  []*loop
	addr   string
	logger *slog.Logger

	running sync.WaitGroup
	closing sync.Once
}

// New binds every loop's listener and prepares its server connections
// (dialled on first use). Nothing runs until Start.
func New(cfg Config, logger *slog.Logger) (*Proxy, error) {
	p, err := cfg.build(rand.Uint32)
	if err != nil {
		return nil, err
	}
	px := &Proxy{addr: p.listen.String(), logger: logger}
	for i := range cfg.Loops {
		l, err := newLoop(i, p, logger)
		if err != nil {
			for _, l := range px.loops {
				l.shutdown()
				unix.Close(l.wake)
			}
			return nil, fmt.Errorf("loop %d: %w", i, err)
		}
		px.loops = append(px.loops, l)
	}
	return px, nil
}

// Addr is the listening address.
func (px *Proxy) Addr() string { return px.addr }

// Start runs every loop in a goroutine of its own.
func (px *Proxy) Start() {
	for _, l := range px.loops {
		px.running.Add(1)
		go func() {
			defer px.running.Done()
			l.run()
		}()
	}
}

// Close stops the loops (each closes its own sockets) and waits for them.
func (px *Proxy) Close() {
	px.closing.Do(func() {
		one := []byte{1, 0, 0, 0, 0, 0, 0, 0}
		for _, l := range px.loops {
			if _, err := unix.Write(l.wake, one); err != nil {
				px.logger.Warn("waking a loop to stop", "loop", l.id, "err", err)
			}
		}
		px.running.Wait()
		for _, l := range px.loops {
			unix.Close(l.wake)
		}
	})
}

// sockaddr converts a resolved TCP address for the socket calls.
func sockaddr(a *net.TCPAddr) (family int, sa unix.Sockaddr, err error) {
	if ip4 := a.IP.To4(); ip4 != nil {
		s := &unix.SockaddrInet4{Port: a.Port}
		copy(s.Addr[:], ip4)
		return unix.AF_INET, s, nil
	}
	if ip6 := a.IP.To16(); ip6 != nil {
		s := &unix.SockaddrInet6{Port: a.Port}
		copy(s.Addr[:], ip6)
		return unix.AF_INET6, s, nil
	}
	return 0, nil, errors.New("not an IP address: " + a.String())
}

// listenBacklog is asked of listen(2); the kernel caps it at somaxconn.
const listenBacklog = 4096

// listenReusePort makes one loop's listening socket. With SO_REUSEPORT
// every loop binds the same address and the kernel hashes each new
// connection to one of them: no accept is shared between loops and no
// connection is handed from one loop to another.
func listenReusePort(a *net.TCPAddr) (int, error) {
	family, sa, err := sockaddr(a)
	if err != nil {
		return -1, err
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	for _, opt := range []int{unix.SO_REUSEADDR, unix.SO_REUSEPORT} {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, opt, 1); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("setsockopt: %w", err)
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("bind %s: %w", a, err)
	}
	if err := unix.Listen(fd, listenBacklog); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("listen %s: %w", a, err)
	}
	return fd, nil
}
