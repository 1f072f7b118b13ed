// Package metallb converts a MetalLB configuration (the legacy ConfigMap and
// the metallb.io CRDs) into bgplb's objects, saying what it could not
// carry. It reads documents and writes documents: it talks to no cluster,
// so a conversion can be reviewed before anything is applied.
package metallb
