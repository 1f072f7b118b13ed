//go:build routeronly

package main

import "github.com/spf13/cobra"

// kubeCmds: none in the router's build (make build-router).
func kubeCmds() []*cobra.Command { return nil }
