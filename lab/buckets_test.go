package lab

import (
	"slices"
	"testing"
)

func TestParseBuckets(t *testing.T) {
	tests := []struct {
		name, in string
		want     []uint32
		err      bool
	}{
		{"in order", `[{"id":12,"bucket":{"index":0,"idle_time":0,"nhid":2},"flags":[]},{"id":12,"bucket":{"index":1,"idle_time":0,"nhid":1},"flags":[]}]`, []uint32{2, 1}, false},
		{"out of order", `[{"id":12,"bucket":{"index":1,"nhid":7}},{"id":12,"bucket":{"index":0,"nhid":8}}]`, []uint32{8, 7}, false},
		{"empty", `[]`, []uint32{}, false},
		{"index out of range", `[{"id":12,"bucket":{"index":3,"nhid":7}}]`, nil, true},
		{"not json", `Dump terminated`, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseBuckets([]byte(tt.in))
			if (err != nil) != tt.err || !slices.Equal(got, tt.want) {
				t.Errorf("ParseBuckets = %v, %v; want %v (error: %v)", got, err, tt.want, tt.err)
			}
		})
	}
}
