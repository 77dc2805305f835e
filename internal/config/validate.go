package config

// validate checks what no single key can: required keys, keys that need or
// exclude each other, and names that must be unique. Problems go to d.errs.
func (d *decoder) validate(states []*poolState) {
	for _, st := range states {
		if !st.broken {
			d.validatePool(st)
		}
	}
	// Two pools cannot listen on one address (conf_post_validate). twemproxy
	// compares the text; comparing the parsed address also catches
	// "[::1]:1" against "::1:1". Hostnames are not resolved, so localhost
	// against 127.0.0.1 is left for the listener to find.
	listeners := make(map[Address]*Pool)
	for _, st := range states {
		p := st.pool
		if st.dup || p.Listen.Network == "" {
			continue
		}
		a := p.Listen
		a.Mode = 0
		if other, ok := listeners[a]; ok {
			d.add(st.keys["listen"], p.Name, "listen", "listen %s is already used by pool %q (line %d)", p.Listen, other.Name, other.Line)
			continue
		}
		listeners[a] = p
	}
}

func (d *decoder) validatePool(st *poolState) {
	p, seen := st.pool, st.keys
	lineOf := func(k string) int {
		if l, ok := seen[k]; ok {
			return l
		}
		return p.Line
	}
	add := func(k, format string, args ...any) { d.add(lineOf(k), p.Name, k, format, args...) }
	_, hasListen := seen["listen"]
	_, hasServers := seen["servers"]
	_, hasGroups := seen["groups"]
	_, hasSentinels := seen["sentinels"]
	_, hasRedis := seen["redis"]
	_, hasAuth := seen["redis_auth"]

	if !hasListen {
		add("listen", "has no listen address (add listen: host:port)")
	}

	// A pool lists its servers, or (twemproxy-163) names Sentinel groups
	// whose masters become its servers.
	switch {
	case hasServers && hasGroups:
		add("groups", "has both servers and groups; list servers, or name groups for sentinels to resolve, not both")
	case hasGroups && !hasSentinels:
		add("groups", "has groups but no sentinels to ask for their masters (add sentinels: host:port entries)")
	case hasSentinels && !hasGroups:
		add("sentinels", "has sentinels but no groups (add groups: with the Sentinel master names)")
	case !hasServers && !hasGroups:
		add("servers", "has no servers (add servers: with host:port:weight entries, or groups: and sentinels:)")
	}
	if hasGroups {
		// twemproxy-163 has no redis key: every pool there speaks Redis.
		if hasRedis && !p.Redis {
			add("redis", "is a Sentinel pool (groups:), which always speaks Redis; remove redis: false")
		}
		p.Redis = true
	}
	if _, ok := seen["script_no_keys"]; ok && !p.Redis {
		add("script_no_keys", "script_no_keys needs redis: true (Memcached has no scripts)")
	}
	if _, ok := seen["databases"]; ok && p.RedisDB >= p.Databases {
		add("databases", "redis_db %d is not below databases %d (the servers' databases are 0 to databases-1)", p.RedisDB, p.Databases)
	}
	if hasAuth && !p.Redis {
		// nutcracker: `directive "redis_auth:" is only valid for a redis pool`.
		add("redis_auth", "redis_auth needs redis: true (Memcached pools have no AUTH)")
	}

	// Names must be unique within a pool: a server's name is its identity on
	// the ring and in stats (conf_validate_server compares names only, so
	// one address twice under two names is allowed, as in twemproxy).
	names := make(map[string]Server)
	for _, s := range p.Servers {
		n := s.RingName()
		if first, ok := names[n]; ok {
			hint := ""
			if s.Name == "" && first.Name == "" {
				hint = "; both servers have the same address: give each a name"
			}
			d.add(s.Line, p.Name, "servers", "duplicate server name %q (also on line %d)%s", n, first.Line, hint)
			continue
		}
		names[n] = s
	}
	sentinels := make(map[string]Server)
	for _, s := range p.Sentinels {
		n := s.RingName()
		if first, ok := sentinels[n]; ok {
			d.add(s.Line, p.Name, "sentinels", "duplicate sentinel %q (also on line %d)", n, first.Line)
			continue
		}
		sentinels[n] = s
	}
	groups := make(map[string]int)
	for i, g := range p.Groups {
		line := st.groupLines[i]
		if first, ok := groups[g]; ok {
			d.add(line, p.Name, "groups", "duplicate group %q (also on line %d)", g, first)
			continue
		}
		groups[g] = line
	}
}
