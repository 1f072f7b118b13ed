// Package bench holds the whole-system benchmarks and the soak: the bgplb
// binary (and BIRD, FRR, gobgpd beside it) in network namespaces, fed by
// our own BGP speaker (bgp/session and the bgp/wire Encoder), measured at
// the kernel. They need root and run only when asked:
//
//   - make bench-compare: BenchmarkCompare (bgplb router, BIRD 2, FRR
//     bgpd+zebra and gobgpd, one eBGP session each, 100k and 1M /32s from
//     198.18.0.0/15 then 100.64.0.0/10, in fresh namespaces, interleaved,
//     medians of BGPLB_COMPARE_RUNS runs and a table of ratios against
//     bgplb), BenchmarkManyPeers (5,000 dynamic peers at once, BIRD beside
//     it at a size it manages) and BenchmarkRouterRestart (a router
//     restarted over 1M routes left in the kernel).
//   - make soak (SOAK_DURATION, default 10m): TestSoak, 50 peers flapping
//     and churning against the router; RSS and goroutines must stay flat,
//     the log hold no unexpected WARN/ERROR, and the kernel end equal to the
//     RIB.
//
// What is measured, and how: routes in the kernel are the main table's
// prefix count from /proc/PID/net/fib_triestat (milliseconds at 1M, where a
// netlink dump takes a second), less the count before the daemon installs
// anything; gobgpd cannot program the kernel (nor this FRR's zebra), so its
// figures are its RIB's (`gobgp global rib summary`). Peak RSS is VmHWM and
// CPU is utime+stime from /proc, summed over the daemon's processes (FRR:
// bgpd and zebra). "Gone" is the time from resetting the injector's TCP
// connection (SO_LINGER 0: no NOTIFICATION, no withdrawal) until the count
// is back to the baseline. The router runs with the Environment= of the
// shipped systemd unit, plus BGPLB_BENCH_ENV.
package bench
