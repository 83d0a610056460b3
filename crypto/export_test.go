package crypto

import "bytes"

// BucketKeys returns copies of the ring's live raw bucket keys, so tests
// can show that none of them is ever written to disk in the clear.
func BucketKeys(r *KeyRing) [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	var keys [][]byte
	for _, b := range r.state.Load().buckets {
		keys = append(keys, bytes.Clone(b.key))
	}
	return keys
}
