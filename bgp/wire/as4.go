package wire

// mergeAS4 rebuilds the 4-octet AS path and aggregator from what a 2-octet
// session carries (RFC 6793 §4.2.3), in whatever order AS_PATH and AS4_PATH
// arrived.
func (d *decoder) mergeAS4() {
	if d.o.AS4 {
		return
	}
	u, a := d.u, &d.u.Attrs
	if u.hasAg4 && a.Has(AttrAggregator) {
		if a.Aggregator.AS != ASTrans {
			// An OLD speaker aggregated after the path was built: the
			// AS4 attributes describe a path that no longer exists.
			return
		}
		a.Aggregator = u.as4Ag
	}
	if len(u.as4) == 0 || !a.Has(AttrASPath) {
		return
	}
	k := a.ASPath.Len() - u.as4.Len()
	if k < 0 {
		// AS4_PATH longer than AS_PATH: it is ignored.
		return
	}
	u.merged = mergeASPaths(u.merged[:0], a.ASPath, u.as4, k)
	a.ASPath, u.merged = u.merged, a.ASPath
}

// mergeASPaths appends to dst the leading part of old holding k ASes (with
// any confederation segments met before they run out) followed by as4.
func mergeASPaths(dst, old, as4 ASPath, k int) ASPath {
	add := func(typ uint8, asns []uint32) {
		if len(dst) < cap(dst) {
			dst = dst[:len(dst)+1]
		} else {
			dst = append(dst, ASSegment{})
		}
		s := &dst[len(dst)-1]
		s.Type, s.ASNs = typ, append(s.ASNs[:0], asns...)
	}
	for _, s := range old {
		switch {
		case s.Type == ASConfedSequence || s.Type == ASConfedSet:
			add(s.Type, s.ASNs)
			continue
		case k == 0:
		case s.Type == ASSet:
			add(s.Type, s.ASNs)
			k--
			continue
		default:
			n := min(k, len(s.ASNs))
			add(s.Type, s.ASNs[:n])
			k -= n
			continue
		}
		break
	}
	for i, s := range as4 {
		if i == 0 && s.Type == ASSequence && len(dst) > 0 && dst[len(dst)-1].Type == ASSequence {
			last := &dst[len(dst)-1]
			last.ASNs = append(last.ASNs, s.ASNs...)
			continue
		}
		add(s.Type, s.ASNs)
	}
	return dst
}
