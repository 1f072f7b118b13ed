// Command kube-apiserver is the upstream API server, built from the pinned
// module so that tests and the lab need no prebuilt download.
package main

import (
	"os"

	// The API server resolves time zones (CronJob validation) and must not
	// depend on the host's zoneinfo.
	_ "time/tzdata"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() { os.Exit(cli.Run(app.NewAPIServerCommand())) }
