module github.com/shardproxy/shardproxy

go 1.26.0

require (
	// Tests only: integration tests drive Memcached pools with a real client library.
	github.com/bradfitz/gomemcache v0.0.0-20260422231931-4d751bb6e37c
	// /metrics on the stats port: the Prometheus exposition format, its
	// content negotiation and the Go runtime and process collectors, which
	// operators expect to match every other Go exporter. Not v1.25: its
	// prometheus/common v0.73 needs github.com/pandatix/go-abnf, which the
	// module proxy refuses to serve.
	github.com/prometheus/client_golang v1.24.1
	// Tests only: the metric types (dto) of parsed /metrics output.
	github.com/prometheus/client_model v0.6.2
	// Tests only: expfmt parses /metrics as Prometheus would.
	github.com/prometheus/common v0.70.1
	// Tests only: integration tests drive the proxy with a real Redis client.
	github.com/redis/go-redis/v9 v9.23.0
	// rt_sigaction, tgkill and the thread's signal mask: a SIGSEGV sent by
	// another process ends the proxy by that signal, as nutcracker
	// (internal/segv). Already in the build through client_golang.
	golang.org/x/sys v0.48.0
	// The configuration parser: yaml.v3's node API gives the line numbers
	// that every configuration error names.
	gopkg.in/yaml.v3 v3.0.1
)

require (
	github.com/BurntSushi/toml v1.4.1-0.20240526193622-a339e1f7089c // indirect
	github.com/beorn7/perks v1.0.1 // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/munnerz/goautoneg v0.0.0-20191010083416-a7dc8b61c822 // indirect
	github.com/prometheus/procfs v0.21.1 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	golang.org/x/exp/typeparams v0.0.0-20231108232855-2478ac86f678 // indirect
	golang.org/x/mod v0.41.0 // indirect
	golang.org/x/sync v0.23.0 // indirect
	golang.org/x/tools v0.51.0 // indirect
	google.golang.org/protobuf v1.36.11 // indirect
	honnef.co/go/tools v0.8.2 // indirect
)

// make lint runs `go tool staticcheck`: pinned here (v0.8.2, the semver tag of
// staticcheck 2026.2.2), so a fresh machine builds the same version and
// nothing is installed into GOPATH/bin.
tool honnef.co/go/tools/cmd/staticcheck
