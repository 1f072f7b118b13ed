package rib

// checkNextHop asks Config.NextHop about a new source's next hop. Sources
// the RIB already refuses (no next hop, AS loop, ...) are not asked.
func (r *RIB) checkNextHop(s *source) uint8 {
	if r.cfg.NextHop == nil || s.rank.invalid != Valid {
		return 0
	}
	return r.cfg.NextHop(&s.peer.peer, s.nextHop)
}

// Revalidate asks Config.NextHop again about the next hop of every source
// (one per peer, attribute set and next hop: few), and when some changed
// between usable and not, re-runs the decision for the prefixes holding
// their paths. The daemon calls it when reachability changed (links,
// addresses, routes). The prefixes whose ECMP set changed are handed to
// emit in batches, as RemovePeer does, from the calling goroutine with no
// RIB lock held; the batch is reused after emit returns. It returns the
// number of sources whose usability changed.
//
// When nothing changed it costs one NextHop call per source. Otherwise it
// visits the shards where the peers of those sources have paths, and
// re-ranks only the prefixes that hold one of them: paths are not indexed
// by source (that would cost memory per path), so the visit is a scan of
// those shards, like a peer-down sweep but without writes to unaffected
// prefixes. Peers keep updating meanwhile; each shard is consistent under
// its lock, in the old generation of verdicts or the new.
func (r *RIB) Revalidate(emit func(*Changes)) int {
	r.reval.Lock()
	defer r.reval.Unlock()
	next := r.gen ^ 1
	f, recoded := r.intern.recheck(r, r.gen, next)
	if f.n == 0 && !recoded {
		return 0
	}
	// Past here the shards move to the new generation, if only to show
	// the new reason of a next hop that stayed unusable.
	o := &r.rop
	var batch *Changes
	if emit != nil {
		batch = &r.rbuf
	}
	o.out = batch
	defer o.finish()
	r.inBatches(batch, emit,
		func(sh *shard[key4]) { sh.revalidate(o, &f, next) },
		func(sh *shard[key6]) { sh.revalidate(o, &f, next) })
	if batch != nil && cap(batch.List) > removeBatch*2 {
		r.rbuf = Changes{}
	}
	r.gen = next
	return f.n
}

// flips are the sources whose usability a Revalidate changes.
type flips struct {
	n     int
	srcs  []bool       // by source index
	slots map[int]bool // their peers'
}

// has says whether p's source may have flipped, without the pointer chase
// to the source (a scan of a million paths is mostly this); a source that
// took a freed index since is not flipped, which source.flipped tells.
func (f *flips) has(p path) bool { return int(p.src) < len(f.srcs) && f.srcs[p.src] }

// recheck stores the verdict on every live source's next hop in generation
// next, and returns the sources that changed usability since generation
// cur, and whether any verdict changed at all.
func (in *interner) recheck(r *RIB, cur, next uint8) (f flips, recoded bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, c := range *in.srcs.chunks.Load() {
		for _, s := range c {
			if s == nil {
				continue
			}
			s.reach[next] = r.checkNextHop(s)
			recoded = recoded || s.reach[next] != s.reach[cur]
			if s.flipped() {
				if f.n++; f.slots == nil {
					f.srcs = make([]bool, in.srcs.n)
					f.slots = map[int]bool{}
				}
				f.srcs[s.id] = true
				f.slots[s.peer.slot] = true
			}
		}
	}
	return f, recoded
}

// revalidate moves the shard to generation next, re-ranking the prefixes
// that hold a path whose usability changed and moving its counters.
func (sh *shard[K]) revalidate(o *op, f *flips, next uint8) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	cur := sh.gen
	sh.gen = next
	if !sh.holdsAny(f.slots) {
		return
	}
	for k, p := range sh.one.all() {
		if !f.has(p) {
			continue
		}
		s := o.src(p)
		if !s.flipped() {
			continue
		}
		sh.recount(s, cur, next)
		o.enter(cur)
		old := o.ecmp1(0, p)
		o.enter(next)
		sh.settle(o, k.prefix(), old, o.ecmp1(1, p))
	}
	for k, pr := range sh.two.all() {
		if !f.has(pr[0]) && !f.has(pr[1]) {
			continue
		}
		o.pbuf = pr
		if sh.rerank(o, f, k, o.pbuf[:], cur, next) {
			sh.two.set(k, o.pbuf) // a new value for a present key: all goes on
		}
	}
	for k, paths := range sh.many {
		sh.rerank(o, f, k, paths, cur, next)
	}
}

// rerank moves the counters of the ranked paths of k from generation cur to
// next, and ranks them again if any changed usability, reporting whether.
func (sh *shard[K]) rerank(o *op, f *flips, k K, paths []path, cur, next uint8) bool {
	hit := false
	for _, p := range paths {
		if !f.has(p) {
			continue
		}
		if s := o.src(p); s.flipped() {
			sh.recount(s, cur, next)
			hit = true
		}
	}
	if !hit {
		return false
	}
	o.old = append(o.old[:0], paths[:ecmpLen(paths)]...)
	o.enter(next)
	o.ord.order(paths)
	sh.settle(o, k.prefix(), o.old, paths[:ecmpLen(paths)])
	return true
}

// holdsAny reports whether any of the peers in slots has paths in the shard.
func (sh *shard[K]) holdsAny(slots map[int]bool) bool {
	for slot := range slots {
		if slot < len(sh.counts) && sh.counts[slot].received > 0 {
			return true
		}
	}
	return false
}

// recount moves one path of s between accepted and not, from generation
// cur to next.
func (sh *shard[K]) recount(s *source, cur, next uint8) {
	d := int32(0)
	if s.usable(next) {
		d++
	}
	if s.usable(cur) {
		d--
	}
	if d != 0 {
		sh.counter(s).accepted += d
		s.peer.accepted.Add(int64(d))
	}
}
