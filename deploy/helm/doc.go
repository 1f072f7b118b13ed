// Package helm tests the bgplb Helm chart in bgplb/ with Helm's own Go
// packages (no helm binary): lint, rendering with default and other
// values, drift against config/ and deploy/manifests, and installing the
// rendered objects on a real API server where the controller, run exactly
// as the chart's container says, allocates.
//
// The chart's crds/, rbac/ and examples/ are copies of config/ and
// deploy/examples (a chart cannot read outside its directory): the tests
// fail when they are stale, and `go generate ./deploy/helm` rewrites them.
package helm

//go:generate go test -run ^TestCopies$ . -update
