// Package l2owner elects one owner per L2 service address among the
// eligible nodes, through coordination.k8s.io/v1 Leases in the speaker's
// namespace, labelled bgplb.io/l2-lease.
//
// A node heartbeat (bgplb.io/l2-lease=node, named NodeLeaseName) exists
// while the node is a candidate (Ready, not excluded, selected by some L2
// policy). It is renewed every RenewInterval and carries the exact lease
// duration and the node's policies in annotations. One renewal keeps all
// the node's addresses, so the steady state costs one write per node per
// interval, whatever the number of addresses. Observers count a node live
// until the moment they saw its last renewal plus the published duration,
// on their own monotonic clock; a deleted heartbeat is dead at once. A
// node counts itself live only until RenewInterval/2 before any observer
// may see it expire (the fence), so a node cut off stops answering before
// anyone else starts. The deciding loop makes no API call: a writer
// goroutine carries out its writes, each allowed up to LeaseDuration, so
// that a slow API server delays ownership changes but never the loop's
// look at the fence. A renewal may run as long as the fence holds, and
// keeps the version it wrote across failures (only a Conflict makes it
// read again), so that it costs one request however slow the server.
// The heartbeat is renewed only while the loop finishes steps (a loop
// stuck in OnChange or OnTransition lets it expire) and is deleted, when
// the node stops being a candidate, only after the loop has stopped
// answering. Nothing is written before both Set and SetCandidacy have
// been called, and nothing is renewed or acquired once Stop is.
//
// What a node saw of the address leases before it last became live (in
// its own eyes) may be stale, from before a cut: it answers again only
// once a LIST of the address leases begun since has been read.
//
// An address lease (bgplb.io/l2-lease=address, named AddressLeaseName)
// exists for each address the cluster serves in L2 mode and names its
// holder. It is not renewed; it is written only when ownership changes,
// as a compare-and-swap on its resourceVersion, so two nodes never both
// acquire. Its holder deletes it when the address is no longer wanted; a
// lease whose holder is dead and whose address nobody wants is deleted by
// any node after it has been unchanged for two lease durations, again
// conditional on the version seen.
//
// Who answers is the pure function Decide: the candidates are the live
// nodes whose policies select the address and, for externalTrafficPolicy
// Local, have a usable endpoint (Want.Nodes), ranked by rendezvous
// hashing. The holder answers while it is the best live candidate; when it
// is not, it stops answering first (OnChange) and then hands the lease to
// the best candidate. Others take the lease only from a holder that is
// dead (confirmed by reading its heartbeat: a stalled watch is not a dead
// node) or, in their view, no candidate for longer than a lease duration,
// and they start answering only once their write has succeeded. A holder
// out only because its own fence lapsed hands nothing over (the others
// still see it live and would hand the address straight back); they take
// it once its heartbeat expires.
//
// The load on the API server: N nodes write N/RenewInterval heartbeats
// per second (3 per second with 3 nodes at the default 500ms), whatever
// the number of addresses, and each renewal reaches every node's watch:
// N²/RenewInterval watch events per second (18 per second with 3 nodes,
// 200 with 10). Address leases are written only when ownership changes.
//
// A node's heartbeat Lease is deleted when it stops being a candidate or
// stops gracefully. One left by a node that vanished (deleted from the
// cluster without a graceful stop) is deleted by any node that has seen
// it unchanged for DefaultReapAfter, conditional on that version.
package l2owner
