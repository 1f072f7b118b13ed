package fib

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// dumpNexthops returns every nexthop object of the namespace, link-local
// gateways with the zone of their interface.
func (f *FIB) dumpNexthops(ctx context.Context) ([]kernelNexthop, error) {
	links := f.links.Load()
	var req msgBuf
	seq := f.c.nextSeq(1)
	req.dumpNexthops(seq)
	var nhs []kernelNexthop
	err := f.c.dump(ctx, req.b, seq, func(m nlMsg) error {
		if m.typ != unix.RTM_NEWNEXTHOP {
			return nil
		}
		n, err := parseNexthop(m.data)
		if err != nil {
			return err
		}
		n.gw = links.zone(n.gw, n.oif)
		nhs = append(nhs, n)
		return nil
	})
	return nhs, err
}

// scanRoutes streams the routes of key k (both families) to fn, one at a
// time: nothing is kept, so reading a million routes costs the memory of
// one. r and its hops are valid only during the call. A dump that a
// concurrent change interrupted is run again, so fn may see a route twice.
func (f *FIB) scanRoutes(ctx context.Context, k routeKey, fn func(r *kernelRoute)) error {
	var arena []NextHop
	for try := 1; ; try++ {
		err := f.scanOnce(ctx, k, &arena, fn)
		if !errors.Is(err, errDumpInterrupted) || try == dumpRetries {
			if err != nil {
				return fmt.Errorf("fib: dump routes: %w", err)
			}
			return nil
		}
	}
}

func (f *FIB) scanOnce(ctx context.Context, k routeKey, arena *[]NextHop, fn func(r *kernelRoute)) error {
	// One route value for the whole dump: fn takes its address, which
	// would otherwise put every route of the table on the heap.
	var r kernelRoute
	links := f.links.Load()
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		var req msgBuf
		seq := f.c.nextSeq(1)
		req.dumpRoutes(seq, fam, k.table, k.proto)
		err := f.c.dump(ctx, req.b, seq, func(m nlMsg) error {
			if m.typ != unix.RTM_NEWROUTE {
				return nil
			}
			var err error
			var grown []NextHop
			r, grown, err = parseRoute(m.data, (*arena)[:0], links)
			*arena = grown
			if err != nil {
				return err
			}
			if r.table == k.table && r.proto == k.proto && r.metric == k.metric {
				fn(&r)
			}
			return nil
		})
		// The kernel creates a table with its first route of a family.
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return err
		}
	}
	return nil
}

// nexthopIndex maps the ids of dumped objects to them.
func nexthopIndex(nhs []kernelNexthop) map[uint32]*kernelNexthop {
	byID := make(map[uint32]*kernelNexthop, len(nhs))
	for i := range nhs {
		byID[nhs[i].id] = &nhs[i]
	}
	return byID
}

// routeHops returns a kernel route's next hops, those of its object when
// it uses one, in canonical form, appended to dst.
func routeHops(dst []NextHop, r *kernelRoute, byID map[uint32]*kernelNexthop) []NextHop {
	hops := r.hops
	var scratch [MaxNextHops]NextHop
	if nh, ok := byID[r.nhID]; ok && r.nhID != 0 {
		hops = objectHops(scratch[:0], nh, byID)
	}
	return canonicalHops(dst, hops)
}

func objectHops(dst []NextHop, nh *kernelNexthop, byID map[uint32]*kernelNexthop) []NextHop {
	if nh.group == nil {
		if nh.gw.IsValid() {
			dst = append(dst, NextHop{Addr: nh.gw})
		}
		return dst
	}
	for _, m := range nh.group {
		if mn, ok := byID[m.id]; ok && mn.gw.IsValid() {
			dst = append(dst, NextHop{Addr: mn.gw, Weight: m.weight})
		}
	}
	return dst
}

// Dump returns the routes of our protocol in our table as the kernel has
// them, in canonical form, sorted by prefix. Routes through nexthop objects
// are shown with the objects' gateways and weights. It is for people and
// tests (`bgplb fib`); the FIB itself never holds the kernel's routes.
func (f *FIB) Dump(ctx context.Context) ([]Route, error) {
	if err := f.enter(); err != nil {
		return nil, err
	}
	defer f.mu.Unlock()
	if err := f.refreshLinks(ctx); err != nil {
		return nil, err
	}
	var nhs []kernelNexthop
	if f.haveNH {
		var err error
		if nhs, err = f.dumpNexthops(ctx); err != nil {
			return nil, fmt.Errorf("fib: dump nexthops: %w", err)
		}
	}
	byID := nexthopIndex(nhs)
	var out []Route
	var arena []NextHop
	err := f.scanRoutes(ctx, f.key, func(r *kernelRoute) {
		start := len(arena)
		arena = routeHops(arena, r, byID)
		out = append(out, Route{Prefix: r.prefix, NextHops: arena[start:len(arena):len(arena)]})
	})
	if err != nil {
		return nil, err
	}
	SortRoutes(out)
	return dedupRoutes(out), nil
}

// dedupRoutes drops repeats a re-run dump left (sorted input).
func dedupRoutes(rs []Route) []Route {
	n := 0
	for i, r := range rs {
		if i > 0 && r.Prefix == rs[n-1].Prefix {
			rs[n-1] = r
			continue
		}
		rs[n] = r
		n++
	}
	return rs[:n]
}
