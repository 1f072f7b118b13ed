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
// anyone else starts. Its deciding loop never spends more than
// RenewInterval/4 in API calls between two looks at the fence.
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
// and they start answering only once their write has succeeded.
package l2owner
