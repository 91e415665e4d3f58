//go:build sockmux_k8s

package cluster

// The k8s provider, in binaries built with -tags sockmux_k8s: its
// Kubernetes client (client-go) doubles the size of the sockmux binary,
// which most hubs do not need.

import (
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/k8s"
)

// newK8sProvider is protoactor's Kubernetes provider with the in-cluster
// configuration: the pod's service account, which needs to get, list,
// watch and patch pods in its namespace.
func newK8sProvider() (cluster.ClusterProvider, error) { return k8s.New() }
