// Command kubectl is the upstream client at the API server's version, so
// that `bgplb lab kubectl` works on a machine with no kubectl installed.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
)

func main() { os.Exit(cli.Run(cmd.NewDefaultKubectlCommand())) }
