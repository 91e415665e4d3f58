//go:build !sockmux_k8s

package cluster

import (
	"errors"
	"strings"
	"testing"
)

func TestK8sNeedsItsBuildTag(t *testing.T) {
	_, err := newProvider(Config{Provider: "k8s"})
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "-tags sockmux_k8s") {
		t.Errorf("k8s without its build tag: %v, want ErrConfig naming the tag", err)
	}
}
