//go:build race

package testutil

// raceEnabled reports whether the test binary has the race detector, so
// that the shardproxy binary it builds is built the same way.
const raceEnabled = true
