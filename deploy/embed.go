// Package deploy carries the example objects (deploy/examples) inside the
// binary, for `bgplb lab up`.
package deploy

import "embed"

// Examples holds examples/*.yaml.
//
//go:embed examples/*.yaml
var Examples embed.FS
