// Package rib is the routing information base of the bgplb router: the
// Adj-RIB-In of every peer, a Loc-RIB per address family (IPv4 and IPv6
// unicast), best-path selection and ECMP sets, over interned attribute sets.
//
// # What it is for
//
// A session calls [RIB.Update] with each UPDATE it receives and
// [RIB.RemovePeer] when it goes down; both report the prefixes whose ECMP set
// changed, as [Change] values the daemon turns into kernel routes. The CLI
// reads it with [RIB.Lookup], [RIB.Walk], [RIB.AdjRIBIn] and [RIB.Stats].
//
// # Best path
//
// RFC 4271 §9.1.2.2 and the usual tie-breakers, one step after the other:
// highest LOCAL_PREF (absent: [Policy.DefaultLocalPref], 100; RFC 8326
// GRACEFUL_SHUTDOWN makes it 0), shortest AS_PATH (a set counts one,
// confederation segments nothing), lowest ORIGIN, lowest MED between paths
// from the same neighbour AS (absent: 0), eBGP over iBGP, lowest router ID
// (the ORIGINATOR_ID when present), shortest CLUSTER_LIST, lowest peer
// address; then, only to make the order total, the ADD-PATH identifier and
// the peer ID. The IGP cost to the next hop is skipped: next hops are on
// connected networks. [Reason] names the step that decided.
//
// Paths that cannot be used stay in the RIB, shown and counted, but never
// win: a missing next hop, an AS_PATH holding the local AS, an ORIGINATOR_ID
// equal to our router ID ([Invalid]), or a next hop the daemon cannot reach
// ([InvalidUnreachable], with the daemon's reason in
// [PathView.NextHopVerdict]).
//
// # Next hops
//
// The RIB does not look at links and addresses itself: [Config.NextHop]
// answers for it (the router uses package reach). It is asked once per
// source, when the source is created, and again for every source by
// [RIB.Revalidate], which the daemon calls when reachability changed; only
// prefixes holding a path whose usability changed are decided again and
// reported. Each shard holds a generation number saying which of two
// verdicts per source it reads, so that Revalidate moves the shards over to
// the new verdicts one at a time while peers keep updating, and each shard's
// rankings and counters always agree with what it reads.
//
// # Limits
//
// [Peer.MaxPrefixes] is enforced path by path while an UPDATE is applied:
// the announcement that would go over the limit makes [RIB.Update] return
// [ErrMaxPrefixes], leaving what came before it applied and the rest not.
// Unknown optional attributes are not stored unless
// [Config.UnknownAttrBytes] allows some (the router re-advertises nothing),
// so a peer cannot grow the RIB by varying them.
//
// MED only orders paths of one neighbour AS, which makes the plain pairwise
// comparison intransitive: the result could depend on arrival order. Like
// "deterministic-med", paths are grouped by neighbour AS, each group is
// ranked with MED, and the group winners are ranked against each other
// (without MED, since their ASes differ).
//
// # ECMP
//
// The ECMP set is the best path and every path that ties with it down to,
// and not including, the router-ID step: same LOCAL_PREF, AS_PATH length,
// ORIGIN and session type, and MED within a neighbour AS. Under the
// grouping above a path joins when it ties with its own group's winner (MED
// included) and that winner ties with the best path. Both eBGP and iBGP paths
// qualify, and the AS paths may differ in content and neighbour AS (what
// routers call multipath-relax): the seed's cluster, where every node
// announces the same /32 over iBGP with identical attributes but its own next
// hop, load-shares. The set is capped at [Config.MaxPaths] (default 64) by
// the tie-breakers. Each path's link-bandwidth extended community is exposed
// ([PathView.LinkBandwidth]) for weighting.
//
// # Memory
//
// The design target is a million IPv4 prefixes within BIRD's ~120-150 bytes
// per path, and the whole daemon under ~92 MB. So:
//   - Attribute sets are interned by a canonical encoding (every attribute
//     but NEXT_HOP and the MP ones), copied once when first seen and
//     reference-counted; the next hop is not part of the set, so peers
//     announcing identical attributes share one.
//   - A source is what one peer's paths with one attribute set and one next
//     hop share; a path is a 16-byte record: its source, its age and its
//     ADD-PATH identifier.
//   - A prefix with one path, the common case, is a 16-byte slot (IPv4: a
//     uint64 of address and length, and the path) in an open-addressing
//     table that grows by a quarter and stays 64-80% full: about 24 bytes
//     a prefix live, where a Go map sits half empty at a million prefixes
//     (36). Prefixes with two paths (two nodes, two upstreams) go to a
//     second such table, their pair inline (about 35 bytes a prefix, where
//     a Go map of slices took 96); with more, to a Go map of ranked
//     slices. Each table hashes with a seed of its own, or moving entries
//     from one to another in slot order would pile them into one run.
//   - Tables that shrank to a quarter of their high-water mark are rebuilt,
//     since neither they nor Go maps give memory back otherwise.
//   - IPv4 prefixes are sharded by a hash unlike the FIB's, so that a
//     peer-down sweep does not delete the FIB's entries in its slot order.
//
// # Concurrency
//
// See [RIB]: the Loc-RIB is sharded by prefix hash with a lock per shard,
// each peer's own state is guarded by that peer's lock (calls for one peer
// are serialised, different peers run in parallel), and no lock is held
// across more than one shard.
package rib
