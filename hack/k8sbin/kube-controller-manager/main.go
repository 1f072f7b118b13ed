// Command kube-controller-manager is the upstream controller manager, built
// from the pinned module so that namespaces finalize, garbage collection runs
// and Deployments roll in tests and the lab.
package main

import (
	"os"

	// CronJob time zones must not depend on the host's zoneinfo.
	_ "time/tzdata"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() { os.Exit(cli.Run(app.NewControllerManagerCommand())) }
