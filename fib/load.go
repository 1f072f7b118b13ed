package fib

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// dumpNexthops returns every nexthop object of the namespace.
func (f *FIB) dumpNexthops(ctx context.Context) ([]kernelNexthop, error) {
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
		nhs = append(nhs, n)
		return nil
	})
	return nhs, err
}

// dumpRoutes returns our routes (protocol, table and metric) of one family.
// Their next hops are appended to arena.
func (f *FIB) dumpRoutes(ctx context.Context, fam uint8, krs []kernelRoute, arena []NextHop) ([]kernelRoute, []NextHop, error) {
	var req msgBuf
	seq := f.c.nextSeq(1)
	req.dumpRoutes(seq, fam, f.cfg.Table, f.cfg.Protocol)
	err := f.c.dump(ctx, req.b, seq, func(m nlMsg) error {
		if m.typ != unix.RTM_NEWROUTE {
			return nil
		}
		mark := len(arena)
		r, grown, err := parseRoute(m.data, arena)
		if err != nil {
			return err
		}
		if r.table != f.cfg.Table || r.proto != f.cfg.Protocol || r.metric != f.cfg.Metric {
			arena = grown[:mark]
			return nil
		}
		arena = grown
		krs = append(krs, r)
		return nil
	})
	if errors.Is(err, unix.ENOENT) {
		// The kernel creates a table with its first route of a family.
		return krs, arena, nil
	}
	return krs, arena, err
}

// dumpAll reads the nexthop objects and our routes, again when a change
// during the dump made it inconsistent.
func (f *FIB) dumpAll(ctx context.Context) ([]kernelNexthop, []kernelRoute, error) {
	for try := 1; ; try++ {
		nhs, krs, err := f.dumpOnce(ctx)
		if !errors.Is(err, errDumpInterrupted) || try == dumpRetries {
			return nhs, krs, err
		}
	}
}

func (f *FIB) dumpOnce(ctx context.Context) ([]kernelNexthop, []kernelRoute, error) {
	var nhs []kernelNexthop
	if f.haveNH {
		var err error
		if nhs, err = f.dumpNexthops(ctx); err != nil {
			return nil, nil, fmt.Errorf("fib: dump nexthops: %w", err)
		}
	}
	var krs []kernelRoute
	var arena []NextHop
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		var err error
		if krs, arena, err = f.dumpRoutes(ctx, fam, krs, arena); err != nil {
			return nil, nil, fmt.Errorf("fib: dump routes: %w", err)
		}
	}
	return nhs, krs, nil
}

// load replaces what the FIB knows of the kernel by what the kernel has:
// our routes, and our nexthop objects with their references; objects no
// route uses are deleted. It returns the routes in canonical form.
func (f *FIB) load(ctx context.Context) ([]Route, error) {
	nhs, krs, err := f.dumpAll(ctx)
	if err != nil {
		return nil, err
	}
	routes := newPrefixMap()
	var t *nhTable
	if f.haveNH {
		t = newNHTable(f.cfg.NextHopIDBase, f.cfg.NextHopIDBase+f.cfg.NextHopIDCount-1)
		t.adopt(nhs, f.cfg.Protocol)
	}
	for _, r := range krs {
		var id uint32
		if t != nil && r.nhID != 0 && t.ref(r.nhID) {
			id = r.nhID
		}
		routes.put(r.prefix, id)
	}
	f.routes, f.nh, f.resync = routes, t, false
	if t != nil {
		if garbage := t.collect(); len(garbage) > 0 {
			f.log.Info("fib: deleting unused nexthop objects of an earlier run", "count", len(garbage))
			if err := f.deleteNexthops(ctx, garbage); err != nil {
				return nil, err
			}
		}
	}
	return toRoutes(nhs, krs), nil
}

// toRoutes turns kernel routes into canonical Routes, resolving nexthop
// object ids with the objects dumped beside them. All next hops share one
// backing array.
func toRoutes(nhs []kernelNexthop, krs []kernelRoute) []Route {
	byID := make(map[uint32]*kernelNexthop, len(nhs))
	for i := range nhs {
		byID[nhs[i].id] = &nhs[i]
	}
	n := 0
	for _, r := range krs {
		n += max(len(r.hops), 1)
	}
	arena := make([]NextHop, 0, n)
	var scratch []NextHop
	out := make([]Route, 0, len(krs))
	for _, r := range krs {
		hops := r.hops
		if nh, ok := byID[r.nhID]; ok && r.nhID != 0 {
			scratch = objectHops(scratch[:0], nh, byID)
			hops = scratch
		}
		start := len(arena)
		arena = canonicalHops(arena, hops)
		out = append(out, Route{Prefix: r.prefix, NextHops: arena[start:len(arena):len(arena)]})
	}
	SortRoutes(out)
	return out
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
