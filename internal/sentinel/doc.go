// Package sentinel finds the masters of a Sentinel-mode pool through Redis
// Sentinel and follows their failovers, with the semantics of the
// twemproxy-163 fork: ask each Sentinel master name (group) for its
// address, check it with ROLE, then follow +switch-master announcements,
// re-asking every heartbeat and moving to the next Sentinel of the list
// when one fails. docs/sentinel.md describes the behaviour in full.
//
// The Redis client inside is deliberately tiny: two connections to one
// Sentinel at a time and a short-lived one per ROLE check, built on
// internal/resp, each read and write with a deadline.
package sentinel
