package lbmodel

// AnnotationHealthCheck, on a node's ServiceAnnouncement, holds why the
// node withholds the Service although its endpoints there would have it
// announced: kube-proxy's health check on the Service's
// healthCheckNodePort fails on that node (speaker/healthcheck), e.g.
// "kube-proxy health check on 198.51.100.2:31234 says 0 local endpoints
// (503)". The speaker keeps the ServiceAnnouncement for that, with no
// peers when no address is announced; the controller puts the reason on
// the Service's Announced condition, prefixed with the node's name.
const AnnotationHealthCheck = "bgplb.io/health-check"
