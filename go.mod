module github.com/shardproxy/shardproxy

go 1.26.0

require (
	// Tests only: integration tests drive Memcached pools with a real client library.
	github.com/bradfitz/gomemcache v0.0.0-20260422231931-4d751bb6e37c
	// Tests only: integration tests drive the proxy with a real Redis client.
	github.com/redis/go-redis/v9 v9.23.0
	// The configuration parser: yaml.v3's node API gives the line numbers
	// that every configuration error names.
	gopkg.in/yaml.v3 v3.0.1
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
)
