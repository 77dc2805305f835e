package hashkit

import "bytes"

// HashTagKey returns the part of key that twemproxy hashes under hash_tag
// tag (nc_server.c, server_pool_idx): find the first tag[0] in key, then the
// first tag[1] after it; if both are found and the text between them is not
// empty, that text is returned, otherwise the whole key.
//
// Consequences worth knowing: only the first opening character counts (a
// later, non-empty pair is never tried); with equal characters such as "$$"
// the closing one is the next '$' after the opening one; "{}" right after
// "{" falls back to the whole key even if a later "}" would close a
// non-empty tag. An empty tag disables tagging; twemproxy's configuration
// only accepts two-character tags, and only tag[0] and tag[1] are used.
//
// The result is a subslice of key: nothing is allocated.
func HashTagKey(key []byte, tag string) []byte {
	if len(tag) < 2 {
		return key
	}
	open := bytes.IndexByte(key, tag[0])
	if open < 0 {
		return key
	}
	inner := key[open+1:]
	end := bytes.IndexByte(inner, tag[1])
	if end <= 0 {
		return key
	}
	return inner[:end]
}
