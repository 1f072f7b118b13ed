package v1alpha1_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/internal/lbmodel"
)

// TestParseAgreesWithCRD is the property that lets the allocator and the
// planner trust the model's ranges: for every address entry,
// lbmodel.ParseRange accepts it exactly when
// the CRD's schema and CEL rules do. The entries are random but biased
// towards the edges: ranges whose ends differ in one bit, host bits, mixed
// families, mapped and zoned addresses, stray whitespace and dashes.
func TestParseAgreesWithCRD(t *testing.T) {
	v := v1alpha1.NewObjectValidator(t, "LoadBalancerPool")
	const seed = 20260401
	rng := rand.New(rand.NewPCG(seed, seed))
	n := 3000
	if testing.Short() {
		n = 300
	}
	var accepted, refused int
	for i := 0; i < n; i++ {
		entry := randomEntry(rng)
		_, goErr := lbmodel.ParseRange(entry)
		doc := fmt.Sprintf("apiVersion: bgplb.io/v1alpha1\nkind: LoadBalancerPool\nmetadata: {name: x}\nspec: {addresses: [%q]}\n", entry)
		crdErrs := v.Validate(t, doc)
		if (goErr == nil) != (len(crdErrs) == 0) {
			t.Fatalf("entry %q (seed %d, case %d): Go says %v, the CRD says %v", entry, seed, i, goErr, crdErrs.ToAggregate())
		}
		if goErr == nil {
			accepted++
		} else {
			refused++
		}
	}
	// A generator that drifted to one side would test nothing.
	if accepted < n/5 || refused < n/5 {
		t.Fatalf("unbalanced cases: %d accepted, %d refused", accepted, refused)
	}
}

func randomEntry(r *rand.Rand) string {
	a := randomAddr(r)
	switch r.IntN(10) {
	case 0: // a single address, sometimes spoilt
		return spoil(r, a.String())
	case 1, 2: // a CIDR, sometimes with host bits or a bad length
		bits := r.IntN(a.BitLen() + 2)
		p := netip.PrefixFrom(a, min(bits, a.BitLen()))
		if r.IntN(2) == 0 {
			p = p.Masked()
		}
		return spoil(r, fmt.Sprintf("%s/%d", p.Addr(), bits))
	default: // a range
		b := near(r, a)
		if r.IntN(8) == 0 {
			b = randomAddr(r) // maybe the other family
		}
		sep := []string{"-", " - ", "\t-", "- ", "--", "-"}[r.IntN(6)]
		return spoil(r, a.String()+sep+b.String())
	}
}

// randomAddr is an IPv4 or IPv6 address with few set bits or many, so that
// ranges reach both ends of the space.
func randomAddr(r *rand.Rand) netip.Addr {
	var b [16]byte
	n := 4
	if r.IntN(2) == 0 {
		n = 16
	}
	for i := range n {
		switch r.IntN(3) {
		case 0:
			b[i] = 0
		case 1:
			b[i] = 0xff
		default:
			b[i] = byte(r.Uint32())
		}
	}
	a, _ := netip.AddrFromSlice(b[:n])
	return a
}

// near is an address that differs from a in one bit, or is a step away.
func near(r *rand.Rand, a netip.Addr) netip.Addr {
	switch r.IntN(4) {
	case 0:
		if n := a.Next(); n.IsValid() {
			return n
		}
	case 1:
		if p := a.Prev(); p.IsValid() {
			return p
		}
	case 2:
		return a
	}
	s := a.AsSlice()
	bit := r.IntN(len(s) * 8)
	s[bit/8] ^= 0x80 >> (bit % 8)
	b, _ := netip.AddrFromSlice(s)
	return b
}

// spoil sometimes damages an entry the ways people do.
func spoil(r *rand.Rand, s string) string {
	switch r.IntN(12) {
	case 0:
		return " " + s
	case 1:
		return s + " "
	case 2:
		return "::ffff:" + s
	case 3:
		return s + "%eth0"
	case 4:
		return strings.Replace(s, ".", ".0", 1)
	case 5:
		return strings.ToUpper(s)
	}
	return s
}
