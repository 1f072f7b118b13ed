// Package daemons starts real BGP daemons from Debian inside lab
// namespaces, each with its own config, control socket, pid file and work
// directory (never the system's default instance), and drives them through
// their own CLIs behind one interface, [Daemon]: Announce and Withdraw
// prefixes with this speaker's LAN address as next hop, read Sessions and
// the Received routes. [WaitEstablished] and [WaitReceived] poll them and
// fail fast, with the daemon's log, if it dies.
//
// Launchers: [StartGoBGP] (gobgpd 3.10, the seed's router daemon),
// [StartBIRD] (BIRD 2.0.12), [StartFRR] (FRR 8.4 bgpd with its own zebra),
// [StartExaBGP] (ExaBGP 4.2). With Config.FIB, BIRD and FRR also install
// what they learn into the namespace's kernel table, so one of them can
// stand in for a router in a test.
//
// A session carries IPv4 and IPv6 unicast by default, whatever its own
// address family; the next hops are Config.Local4 and Config.Local6. The
// integration tests cover iBGP and eBGP, IPv4 and IPv6 sessions carrying
// both families, passive ends and TCP-MD5. Announcements carry ORIGIN IGP
// from every daemon (gobgp's CLI would default to INCOMPLETE), so one prefix
// announced by two of them ties down to the router ID and can form an ECMP
// set, as the nodes of one cluster do.
//
// # Quirks found on the way
//
// gobgpd 3.10:
//   - Active, it waits a random 5-10 s before every connection attempt,
//     the first included: connect-retry is raised to at least 5 s and then
//     jittered up to twice that. Make gobgpd passive when its peer can
//     connect, or expect that delay (a router with dynamic neighbours can
//     only be passive, so gobgpd nodes take 5-10 s to come up).
//   - After a reset it stays idle for idle-hold-time-after-reset (30 s by
//     default, refusing connections); the config sets it to 1 s.
//   - An IPv6 route added without a next hop on an IPv4 session goes out
//     with next hop "::", which receivers drop silently; Announce always
//     passes Local4/Local6 explicitly.
//   - Announce and Withdraw cost one gobgp CLI run per prefix (~25 ms);
//     for hundreds of prefixes use BIRD, FRR or ExaBGP, which take a batch.
//   - It has no pid-file flag (-p is --log-plain). Its gRPC API listens on
//     the namespace's own loopback, so every namespace uses port 50051.
//
// BIRD 2.0.12:
//   - `include` is accepted only at the start of a line.
//   - The defaults wait 5 s before the first connection (connect delay time)
//     and 60-300 s after an error (error wait time); the config shortens both.
//   - iBGP neighbours on the LAN are declared `direct`, so their next hops
//     resolve without an IGP.
//   - It sends IPv6 next hops as global plus link-local; receivers must
//     keep the global one.
//
// FRR 8.4.4:
//   - zebra refuses to run as root (root is not in the frrvty group), so it
//     drops to user frr and needs a directory that user owns, below
//     directories everyone can traverse: t.TempDir (0700) does not do, the
//     namespace's scratch directory (0755) does. bgpd runs as root with -S.
//   - bgpd without zebra (-Z) knows no interfaces: it cannot pick an IPv6
//     next hop, and an UPDATE whose IPv6 next hop has a link-local part (as
//     BIRD sends) is treated as withdraw and then resets the session. So
//     zebra always runs; Config.FIB=false only stops bgpd from installing.
//   - FRR 8 defaults refuse eBGP routes without a policy and originate a
//     `network` only when the IGP knows it: the config says
//     `no bgp ebgp-requires-policy` and `no bgp network import-check`.
//   - zebra installs routes with proto bgp (186), the protocol number the
//     bgplb router uses: never run FRR with FIB in the router's namespace.
//   - vtysh exits 0 when it rejects a command (it prints a "%" line) and
//     `bgpd -C` exits 0 on a bad config (it prints "Config Failed").
//
// ExaBGP 4.2.21:
//   - Relative config and env paths are resolved against /etc/exabgp.
//   - The defaults drop privileges to user exabgp, look for CLI FIFOs under
//     /run and answer every API command with "done"; the env file turns all
//     three off. exabgpcli needs those FIFOs, so the process API is used
//     instead: a shell helper follows a commands file into ExaBGP and
//     appends ExaBGP's JSON events to a file.
//   - ExaBGP keeps no RIB and selects nothing: Received is the fold of the
//     event stream, and every path counts as best. The "connected" event
//     comes when a connection attempt starts, even toward an absent host.
//   - A passive neighbour needs exabgp.tcp.bind (the listen addresses);
//     with it set, even --validate binds them.
package daemons
