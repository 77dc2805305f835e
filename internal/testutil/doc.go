// Package testutil starts real servers (redis-server, redis-sentinel,
// memcached, nutcracker and the shardproxy binary itself) for integration
// tests.
//
// Every server runs on a free loopback port (or a unix socket) with its own
// temporary directory, and the Start functions return only once it accepts
// connections, failing the test with the server's log if it does not within
// ten seconds. Each process is registered with t.Cleanup, so it is stopped
// even when the test fails or panics; when the test has failed, the cleanup
// also logs the tail of the server's output.
//
// Processes are controlled only through their PID and process group, never
// by name. Each runs in a process group of its own, so that Ctrl-C in the
// terminal reaches `go test` alone; on Linux it also gets PR_SET_PDEATHSIG
// SIGKILL, so it dies if the test binary dies without running its cleanups
// (a -timeout panic, say). When a server exits, any process it left in its
// group (a redis fork, for instance) is killed before the server is reaped.
//
// A missing binary is a test failure, never a skip: see [Binary].
package testutil
