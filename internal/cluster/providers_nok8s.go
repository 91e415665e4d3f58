//go:build !sockmux_k8s

package cluster

import (
	"fmt"

	"github.com/asynkron/protoactor-go/cluster"
)

// newK8sProvider: this binary was built without the k8s provider, whose
// Kubernetes client doubles the binary's size (providers_k8s.go).
func newK8sProvider() (cluster.ClusterProvider, error) {
	return nil, fmt.Errorf("%w: this sockmux was built without the k8s provider: build it with go build -tags sockmux_k8s ./cmd/sockmux", ErrConfig)
}
