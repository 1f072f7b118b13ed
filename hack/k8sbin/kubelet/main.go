// Command kubelet is the upstream node agent, built from the pinned module
// so that the lab's node namespaces run real pods at the API server's version.
package main

import (
	"context"
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kubelet/app"
)

func main() { os.Exit(cli.Run(app.NewKubeletCommand(context.Background()))) }
