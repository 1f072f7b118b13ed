package lab

import (
	"encoding/json"
	"fmt"
)

// ParseBuckets reads `ip -j nexthop bucket show id ID`: the nexthop id
// every bucket of a resilient group points at, by bucket index.
func ParseBuckets(out []byte) ([]uint32, error) {
	var bs []struct {
		Bucket struct {
			Index int    `json:"index"`
			NHID  uint32 `json:"nhid"`
		} `json:"bucket"`
	}
	if err := json.Unmarshal(out, &bs); err != nil {
		return nil, fmt.Errorf("lab: nexthop buckets: %w", err)
	}
	ids := make([]uint32, len(bs))
	for _, b := range bs {
		if b.Bucket.Index < 0 || b.Bucket.Index >= len(ids) {
			return nil, fmt.Errorf("lab: nexthop bucket index %d of %d", b.Bucket.Index, len(bs))
		}
		ids[b.Bucket.Index] = b.Bucket.NHID
	}
	return ids, nil
}
