// Package announce is the BGP half of `bgplb speaker`: it keeps one BGP
// session per configured router and makes what each router has been sent
// (its Adj-RIB-Out) follow the routes the planner wants announced to it.
//
// The caller (the Kubernetes shell around the planner) says two things, at
// any time and from any goroutine:
//
//   - SetPeers: the routers to peer with. New peers are started, removed ones
//     closed, peers whose session settings changed restarted; untouched
//     peers keep their sessions.
//   - Announce: the full set of routes one peer should have. The call only
//     stores the set and wakes the peer's goroutine (the latest set wins);
//     that goroutine diffs the set against the peer's Adj-RIB-Out and sends
//     only the difference, many prefixes per UPDATE, grouped by identical
//     attributes, withdrawals included.
//
// Each (re)established session gets the whole set followed by End-of-RIB for
// every negotiated family. Shutdown withdraws everything, waits until the
// withdrawals are written, and closes every session with Cease /
// Administrative Shutdown carrying a shutdown communication (RFC 9003, which
// obsoletes RFC 8203). Restart is the same for a process about to be
// replaced, but for the sessions that negotiated graceful restart (RFC 4724,
// session.Config.GracefulRestart): those are left without a NOTIFICATION and
// withdraw nothing, so the router keeps the routes until the next process
// sends them again (its first OPEN with the R bit) and End-of-RIB.
//
// # Goroutines and ownership
//
// Run owns every goroutine: per peer, the session's own (session.Peer.Run)
// and the peer's worker, which alone computes diffs, encodes and sends; and
// Run's own loop, which alone starts and stops peers. Inputs reach a worker
// through small mutex-guarded fields and a wake channel of capacity one, so
// Announce never blocks on the network and bursts coalesce. The session
// package calls the Handler methods from its goroutine; they only record the
// event and wake the worker.
//
// # What is sent
//
// ORIGIN IGP; AS_PATH empty to an internal peer and [LocalAS] to an external
// one; NEXT_HOP (IPv4 routes with an IPv4 next hop) or MP_REACH_NLRI (IPv6
// routes, and IPv4 routes over an RFC 8950 extended next hop); LOCAL_PREF
// to internal peers only (100 unless the route says otherwise);
// COMMUNITIES and LARGE_COMMUNITY when the route has some, each sorted and
// without duplicates; and the non-transitive link-bandwidth extended
// community of our AS when the route's Bandwidth is positive, which the
// bgplb router turns into ECMP weights.
//
// The next hop of a route is PeerConfig.NextHop4 or NextHop6 for its family,
// or else the session's local address when it is of that family. An IPv6
// route over an IPv4 session therefore needs NextHop6; without it the route
// is skipped and PeerStatus says why. Routes that cannot be sent (invalid
// prefixes, a family the session did not negotiate) are skipped the same
// way; nothing the caller passes makes the announcer panic.
//
// The announcer is also a view.Source, so `bgplb neighbor` and `bgplb rib
// --socket` show a speaker's sessions and what it announces to each.
package announce
