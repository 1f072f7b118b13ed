// Package deploy carries the example objects (deploy/examples) and the
// install bundle (bgplb.yaml) inside the binary, for `bgplb lab up`.
package deploy

import "embed"

// Examples holds examples/*.yaml.
//
//go:embed examples/*.yaml
var Examples embed.FS

// Bundle is bgplb.yaml: what `bgplb lab up` installs into its real
// cluster, as a user installs it into theirs.
//
//go:embed bgplb.yaml
var Bundle []byte
