//go:build race

package memcache

// raceEnabled: the race detector slows the code ~10x, so wall-clock limits
// only apply without it (ratios to a one-shot parse apply always).
const raceEnabled = true
