package deploy

// bgplb.yaml and the copies of config/ under manifests/ are generated:
// the tests fail until they are rewritten after a change.
//
//go:generate go test -run ^TestGenerated$ . -update
