// Command kube-scheduler is the upstream scheduler, built from the pinned
// module, so that pods are placed by the real thing in tests and the lab.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"
)

func main() { os.Exit(cli.Run(app.NewSchedulerCommand())) }
