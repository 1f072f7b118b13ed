// Package bench holds the whole-system benchmarks: the bgplb binary in
// network namespaces, fed by a BGP speaker, measured at the kernel. They run
// only with -bench (make bench PKG=./bench) and need root.
package bench
