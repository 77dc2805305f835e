package hashkit

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Distribution is a pool's `distribution:` — how a hash becomes a server.
type Distribution uint8

// The three twemproxy distributions, in twemproxy's order (dist_type).
const (
	Ketama Distribution = iota
	Modula
	Random
)

var distNames = [...]string{Ketama: "ketama", Modula: "modula", Random: "random"}

// ParseDistribution returns the distribution twemproxy calls name.
func ParseDistribution(name string) (Distribution, bool) {
	for d, n := range distNames {
		if n == name {
			return Distribution(d), true
		}
	}
	return 0, false
}

// String returns the twemproxy name of d.
func (d Distribution) String() string {
	if int(d) < len(distNames) {
		return distNames[d]
	}
	return fmt.Sprintf("Distribution(%d)", uint8(d))
}

// Node is one configured server as the ring sees it.
type Node struct {
	// Name is the server's ring name, computed by the caller: the explicit
	// name if the configuration gives one; else "host:port", or just "host"
	// when the port is 11211; "/path:" for a unix socket. Only ketama
	// hashes it.
	Name string
	// Weight is the server's configured weight, at least 1. Random ignores
	// it.
	Weight int
}

// Spec is what a pool's configuration says about key placement.
type Spec struct {
	// Hash is the pool's `hash:` function, e.g. from HashByName. It is not
	// called for the random distribution, which may leave it nil.
	Hash HashFunc
	// Distribution is the pool's `distribution:`.
	Distribution Distribution
	// HashTag is the pool's `hash_tag:`: empty, or two characters.
	HashTag string
	// Rand draws a uniformly random uint32 for the random distribution and
	// is required for it. It is called from every goroutine that picks a
	// server, so it must be safe for concurrent use: math/rand/v2's Uint32
	// is (it reads the runtime's per-thread generator, so concurrent
	// callers share no state); tests pass a seeded sequence.
	Rand func() uint32
}

// Errors from NewRing.
var (
	ErrNoNodes      = errors.New("hashkit: a pool needs at least one server")
	ErrWeight       = errors.New("hashkit: server weight must be at least 1")
	ErrTotalWeight  = errors.New("hashkit: total server weight exceeds 4294967295")
	ErrLiveMask     = errors.New("hashkit: live mask length differs from the server count")
	ErrHashTag      = errors.New("hashkit: hash_tag must be empty or two characters")
	ErrNoHash       = errors.New("hashkit: no hash function")
	ErrNoRand       = errors.New("hashkit: random distribution needs a random source")
	ErrDistribution = errors.New("hashkit: unknown distribution")
)

// Ring maps keys to servers for one pool, in one state of ejections.
//
// A Ring is immutable after NewRing and safe for concurrent use. When a
// server is ejected or comes back, build a new Ring with the new live mask
// (Rebuild) and publish it; indexes stay those of the configured server
// list, so ejection never renumbers servers.
type Ring struct {
	// All fields are immutable after NewRing.
	spec  Spec
	nodes []Node // the configured servers, copied
	live  []bool // copied; len(live) == len(nodes)
	nlive int

	// ketama: points sorted ascending; owner[i] is the configured index of
	// the server that owns points[i].
	points []uint32
	owner  []int32

	// modula: the live servers in configuration order and the running sum
	// of their weights; slot s belongs to liveIdx[i] for the first i with
	// s < cumWeight[i]. Equal to twemproxy's one-slot-per-weight array
	// without its size.
	cumWeight []uint32

	// random (and modula): configured indexes of the live servers, in
	// twemproxy's server order (TwemproxyOrder).
	liveIdx []int32
}

// NewRing builds the ring for nodes under spec. live marks the servers that
// are in the ring (not ejected); nil means all of them. The result's
// Lookup and Pick return indexes into nodes.
//
// It fails if there are no nodes, a weight is below 1, the weights add up
// past what twemproxy's uint32 arithmetic holds, or spec is incomplete.
func NewRing(spec Spec, nodes []Node, live []bool) (*Ring, error) {
	if len(nodes) == 0 {
		return nil, ErrNoNodes
	}
	if live != nil && len(live) != len(nodes) {
		return nil, fmt.Errorf("%w: %d servers, %d flags", ErrLiveMask, len(nodes), len(live))
	}
	if len(spec.HashTag) != 0 && len(spec.HashTag) != 2 {
		return nil, fmt.Errorf("%w: %q", ErrHashTag, spec.HashTag)
	}
	switch spec.Distribution {
	case Ketama, Modula:
		if spec.Hash == nil {
			return nil, ErrNoHash
		}
	case Random:
		if spec.Rand == nil {
			return nil, ErrNoRand
		}
	default:
		return nil, fmt.Errorf("%w: %d", ErrDistribution, spec.Distribution)
	}
	var total uint64
	for i, n := range nodes {
		if n.Weight < 1 {
			return nil, fmt.Errorf("%w: server %d %q has weight %d", ErrWeight, i, n.Name, n.Weight)
		}
		total += uint64(n.Weight)
		if total > math.MaxUint32 {
			return nil, ErrTotalWeight
		}
	}

	r := &Ring{
		spec:  spec,
		nodes: append([]Node(nil), nodes...),
		live:  make([]bool, len(nodes)),
	}
	for i := range r.live {
		r.live[i] = live == nil || live[i]
	}
	order := TwemproxyOrder(r.nodes)
	for _, i := range order {
		if r.live[i] {
			r.nlive++
			r.liveIdx = append(r.liveIdx, int32(i))
		}
	}
	switch spec.Distribution {
	case Ketama:
		r.points, r.owner = buildKetama(r.nodes, r.live, order)
	case Modula:
		r.cumWeight = buildModula(r.nodes, r.liveIdx)
	}
	return r, nil
}

// TwemproxyOrder returns the indexes of nodes in the order twemproxy keeps
// a pool's servers: sorted by ring name, shorter names first, then
// bytewise (its string_compare). nutcracker sorts the server list that way
// when it checks for duplicate names (conf_validate_server) and never
// restores the configuration order, so the modula slots, the random draw's
// live list and the winner of tied ketama points all follow it: with
// servers 127.0.0.1:7002 and 127.0.0.1:7001 configured in that order,
// modula's slot 0 belongs to :7001. Equal names (which a configuration
// rejects) keep their configuration order.
func TwemproxyOrder(nodes []Node) []int {
	order := make([]int, len(nodes))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		na, nb := nodes[a].Name, nodes[b].Name
		if len(na) != len(nb) {
			return cmp.Compare(len(na), len(nb))
		}
		return strings.Compare(na, nb)
	})
	return order
}

// Rebuild returns a ring with the same spec and servers as r and a new live
// mask (nil: all live) — what twemproxy's server_pool_run does when a
// server is ejected or its retry time comes.
func (r *Ring) Rebuild(live []bool) (*Ring, error) {
	return NewRing(r.spec, r.nodes, live)
}

// Len returns the number of configured servers.
func (r *Ring) Len() int { return len(r.nodes) }

// Live returns the number of servers in the ring.
func (r *Ring) Live() int { return r.nlive }

// IsLive reports whether configured server i is in the ring.
func (r *Ring) IsLive(i int) bool { return i >= 0 && i < len(r.live) && r.live[i] }

// Spec returns the spec the ring was built with.
func (r *Ring) Spec() Spec { return r.spec }

// Lookup returns the configured index of the server that hash h maps to, or
// -1 when no server is live. For the random distribution h is the random
// draw: the result is the (h mod live)-th live server.
//
// Lookup is the distribution alone; Pick adds twemproxy's rules for tags,
// empty keys and one-server pools.
func (r *Ring) Lookup(h uint32) int {
	switch r.spec.Distribution {
	case Ketama:
		return r.lookupKetama(h)
	case Modula:
		return r.lookupModula(h)
	default:
		return r.lookupRandom(h)
	}
}

// Pick returns the configured index of the server for key, or -1 when no
// server is live (twemproxy then fails the request with ECONNREFUSED). It
// mirrors nc_server.c's server_pool_idx:
//
//   - a pool of exactly one configured server gives 0 without hashing
//     (when that server is live);
//   - the hash tag, if any, narrows the key (HashTagKey);
//   - random draws from Spec.Rand and ignores the key;
//   - otherwise an empty key hashes to 0 without calling the hash function,
//     and the hash goes through the distribution.
//
// Pick does not allocate.
func (r *Ring) Pick(key []byte) int {
	if r.nlive == 0 {
		return -1
	}
	if len(r.nodes) == 1 {
		return 0
	}
	if r.spec.Distribution == Random {
		return r.lookupRandom(r.spec.Rand())
	}
	return r.Lookup(r.Hash(key))
}

// Hash returns the hash twemproxy computes for key in this pool: the hash
// tag applied, then 0 for an empty key, else Spec.Hash (0 when a random
// ring has none). The one-server shortcut is Pick's.
func (r *Ring) Hash(key []byte) uint32 {
	key = HashTagKey(key, r.spec.HashTag)
	if len(key) == 0 || r.spec.Hash == nil {
		return 0
	}
	return r.spec.Hash(key)
}
