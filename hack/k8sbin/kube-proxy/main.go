// Command kube-proxy is the upstream Service proxy, built from the pinned
// module so that the lab's nodes forward Service traffic to real pods.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-proxy/app"
)

func main() { os.Exit(cli.Run(app.NewProxyCommand())) }
