// Package config carries the generated manifests (the CRDs and the least-
// privilege roles) inside the binary, so that `bgplb lab up` needs no
// source tree and always applies the manifests the binary was built with.
package config

import "embed"

// FS holds crd/bases/*.yaml and rbac/{controller,speaker}/role.yaml.
//
//go:embed crd/bases/*.yaml rbac/controller/role.yaml rbac/speaker/role.yaml
var FS embed.FS
