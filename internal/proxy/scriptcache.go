package proxy

import (
	"crypto/sha1"
	"encoding/hex"
	"sync"
)

// The bounds of a pool's script cache: past either, the oldest scripts are
// forgotten first. A forgotten script still runs; only an EVALSHA of it
// that a server answers -NOSCRIPT is then relayed to the client instead of
// retried (see redis_script.go).
const (
	scriptCacheBytes = 16 << 20
	scriptCacheCount = 10000
	// scriptOverhead is what one entry costs besides its body, roughly:
	// the SHA1 key, the entry and the two map slots.
	scriptOverhead = 128
)

// scriptCache remembers the bodies of the Lua scripts a pool's clients sent
// (EVAL, EVAL_RO, SCRIPT LOAD) by their SHA1, so that a server that does
// not have a script (restarted, flushed, or added to the pool since) can be
// given it again. Safe for concurrent use.
type scriptCache struct {
	// Immutable after newScriptCache.
	maxBytes, maxCount int

	mu     sync.RWMutex // guards everything below
	bySHA  map[string]*script
	byBody map[string]*script // the same scripts, found without hashing them
	order  []*script          // oldest first, from head
	head   int
	bytes  int
}

// script is one cached script. Immutable.
type script struct {
	sha  string // 40 lower-case hex digits, as Redis names it
	body string
}

func newScriptCache(maxBytes, maxCount int) *scriptCache {
	return &scriptCache{
		maxBytes: maxBytes,
		maxCount: maxCount,
		bySHA:    make(map[string]*script),
		byBody:   make(map[string]*script),
	}
}

// remember adds body to the cache unless it is there already. A script that
// is seen again does not become younger: the cache forgets in the order it
// learnt. Looking a known body up allocates nothing.
func (c *scriptCache) remember(body []byte) {
	c.mu.RLock()
	_, ok := c.byBody[string(body)]
	c.mu.RUnlock()
	if ok || len(body)+scriptOverhead > c.maxBytes {
		return
	}
	sum := sha1.Sum(body)
	sc := &script{sha: hex.EncodeToString(sum[:]), body: string(body)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byBody[sc.body]; ok {
		return // another session got there first
	}
	c.bySHA[sc.sha] = sc
	c.byBody[sc.body] = sc
	c.order = append(c.order, sc)
	c.bytes += len(sc.body) + scriptOverhead
	for len(c.order)-c.head > c.maxCount || c.bytes > c.maxBytes {
		old := c.order[c.head]
		c.order[c.head] = nil
		c.head++
		delete(c.bySHA, old.sha)
		delete(c.byBody, old.body)
		c.bytes -= len(old.body) + scriptOverhead
	}
	if c.head > len(c.order)/2 {
		n := copy(c.order, c.order[c.head:])
		clear(c.order[n:])
		c.order, c.head = c.order[:n], 0
	}
}

// body returns the script whose SHA1 is sha (40 hex digits, either case),
// and whether it is known. It allocates nothing.
func (c *scriptCache) body(sha []byte) (string, bool) {
	if len(sha) != 40 {
		return "", false
	}
	// Redis looks EVALSHA's argument up in lower case.
	var lower [40]byte
	for i, ch := range sha {
		if 'A' <= ch && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		lower[i] = ch
	}
	c.mu.RLock()
	sc, ok := c.bySHA[string(lower[:])]
	c.mu.RUnlock()
	if !ok {
		return "", false
	}
	return sc.body, true
}

// len returns how many scripts are cached, for tests.
func (c *scriptCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.bySHA)
}
