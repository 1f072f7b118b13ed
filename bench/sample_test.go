package bench

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"github.com/bgplb/bgplb/bgp/wire"
	"github.com/bgplb/bgplb/lab"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// sampleCount is how many of the injected prefixes the sampler looks up.
const sampleCount = 64

// kernelSampler looks a few of the injected prefixes up in a namespace's
// kernel table (`ip route get fibmatch`: a lookup, microseconds). Counting
// the whole table (fib_triestat) walks a million-route trie, tens of
// milliseconds of a core each time: polled every 20 ms it took one of the
// machine's two cores from the daemon under test. The count waits until the
// samples say it could be right.
type kernelSampler struct {
	h       *netlink.Handle
	samples []netip.Prefix
}

func newKernelSampler(ns *lab.Netns, nlri []wire.NLRI) (*kernelSampler, error) {
	s := &kernelSampler{}
	for i := range sampleCount {
		if len(nlri) == 0 {
			break
		}
		// Spread over the list, the last prefix included.
		s.samples = append(s.samples, nlri[(len(nlri)-1)-i*(len(nlri)-1)/sampleCount].Prefix)
	}
	err := ns.Do(func() error {
		var err error
		s.h, err = netlink.NewHandle(unix.NETLINK_ROUTE)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("bench: sampler: %w", err)
	}
	return s, nil
}

func (s *kernelSampler) close() { s.h.Close() }

// all reports whether every sample is in the table (want true) or none is
// (want false); it stops at the first that is not as wanted.
func (s *kernelSampler) all(want bool) (bool, error) {
	for _, p := range s.samples {
		has, err := s.has(p)
		if err != nil {
			return false, err
		}
		if has != want {
			return false, nil
		}
	}
	return true, nil
}

// has reports whether the table holds p itself (not a covering route).
func (s *kernelSampler) has(p netip.Prefix) (bool, error) {
	rs, err := s.h.RouteGetWithOptions(net.IP(p.Addr().AsSlice()), &netlink.RouteGetOptions{FIBMatch: true})
	switch {
	case err == unix.ENETUNREACH || err == unix.EHOSTUNREACH || err == unix.ESRCH:
		return false, nil
	case err != nil:
		return false, fmt.Errorf("bench: route get %v: %w", p, err)
	}
	for _, r := range rs {
		if r.Dst != nil {
			if ones, _ := r.Dst.Mask.Size(); ones == p.Bits() {
				return true, nil
			}
		}
	}
	return false, nil
}

// gate turns the sampler into waitCount's precondition.
func (s *kernelSampler) gate(want bool) func(context.Context) (bool, error) {
	if s == nil {
		return nil
	}
	return func(context.Context) (bool, error) { return s.all(want) }
}
