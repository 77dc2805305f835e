//go:build linux

package main

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/shardproxy/shardproxy/internal/config"
	"github.com/shardproxy/shardproxy/internal/hashkit"
)

// Config is everything the prototype serves: one Redis pool.
type Config struct {
	Listen       string   // "host:port" every loop listens on (SO_REUSEPORT)
	Servers      []string // "host:port" or "host:port:weight", in ring order
	Hash         string   // a hashkit hash name, as a pool's hash:
	Distribution string   // ketama, modula or random
	Loops        int      // event loops; each owns its clients and server connections
}

// DefaultConfig is what `make bench` gives both proxies: fnv1a_64 and
// ketama, one loop per GOMAXPROCS (the caller fills Loops).
func DefaultConfig() Config {
	return Config{Listen: "127.0.0.1:22121", Hash: "fnv1a_64", Distribution: "ketama"}
}

// pool is a validated Config: the addresses resolved and the ring built.
type pool struct {
	listen  *net.TCPAddr
	servers []serverAddr
	ring    *hashkit.Ring
}

// serverAddr is one server of the ring.
type serverAddr struct {
	name string // its ring name, as twemproxy computes it
	addr *net.TCPAddr
}

// build validates c and returns every problem at once.
func (c Config) build(rand func() uint32) (*pool, error) {
	var errs []error
	p := &pool{}
	if a, err := net.ResolveTCPAddr("tcp", c.Listen); err != nil || a.Port == 0 {
		errs = append(errs, fmt.Errorf("-listen %q: want host:port with a port", c.Listen))
	} else {
		p.listen = a
	}
	if c.Loops < 1 {
		errs = append(errs, fmt.Errorf("-loops %d: want at least 1", c.Loops))
	}
	hash, ok := hashkit.HashByName(c.Hash)
	if !ok {
		errs = append(errs, fmt.Errorf("-hash %q: not one of %s", c.Hash, strings.Join(hashkit.HashNames(), ", ")))
	}
	dist, ok := hashkit.ParseDistribution(c.Distribution)
	if !ok {
		errs = append(errs, fmt.Errorf("-distribution %q: want ketama, modula or random", c.Distribution))
	}
	if len(c.Servers) == 0 {
		errs = append(errs, errors.New("-servers: at least one host:port"))
	}
	var nodes []hashkit.Node
	for _, s := range c.Servers {
		srv, err := parseServer(s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		addr, err := net.ResolveTCPAddr("tcp", srv.String())
		if err != nil {
			errs = append(errs, fmt.Errorf("-servers %q: %w", s, err))
			continue
		}
		p.servers = append(p.servers, serverAddr{name: srv.RingName(), addr: addr})
		nodes = append(nodes, hashkit.Node{Name: srv.RingName(), Weight: srv.Weight})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	ring, err := hashkit.NewRing(hashkit.Spec{Hash: hash, Distribution: dist, Rand: rand}, nodes, nil)
	if err != nil {
		return nil, err
	}
	p.ring = ring
	return p, nil
}

// parseServer reads "host:port[:weight]" (weight 1 when absent) into the
// configuration's Server, whose RingName is the name ketama hashes.
func parseServer(s string) (config.Server, error) {
	srv := config.Server{Address: config.Address{Network: "tcp"}, Weight: 1}
	hostPort := s
	if i := strings.LastIndexByte(s, ':'); i > 0 && strings.Count(s, ":") == 2 {
		w, err := strconv.Atoi(s[i+1:])
		if err != nil || w < 1 {
			return srv, fmt.Errorf("-servers %q: weight must be a number ≥ 1", s)
		}
		srv.Weight, hostPort = w, s[:i]
	}
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		return srv, fmt.Errorf("-servers %q: %w", s, err)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return srv, fmt.Errorf("-servers %q: port must be 1..65535", s)
	}
	srv.Host, srv.Port = host, n
	return srv, nil
}
