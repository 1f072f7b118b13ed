//go:build !routeronly

package main

import "github.com/spf13/cobra"

// kubeCmds are the roles that talk to Kubernetes. A build with the
// routeronly tag leaves them out: a router box needs none of them, and the
// Kubernetes client packages cost the router role about 19 MB of resident
// memory at start (their init touches much of the binary).
func kubeCmds() []*cobra.Command {
	return []*cobra.Command{newControllerCmd(), newSpeakerCmd(), newLabCmd(), newImportCmd()}
}
