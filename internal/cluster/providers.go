package cluster

// Membership providers by name: this package's "static", and
// protoactor-go's "etcd", "consul" and "k8s", with the options a hub's
// flags give them.

import (
	"context"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/consul"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/etcd"
	"github.com/hashicorp/consul/api"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// etcdBaseKey is the prefix of the etcd provider's keys: it registers
// each member under etcdBaseKey/NAME/.
const etcdBaseKey = "/sockmux"

// newProvider makes the provider c names.
func newProvider(c Config) (cluster.ClusterProvider, error) {
	if c.ClusterProvider != nil {
		return c.ClusterProvider, nil
	}
	var (
		p   cluster.ClusterProvider
		err error
	)
	switch c.Provider {
	case "static":
		sp, err := newStaticProvider(c)
		if err != nil {
			return nil, fmt.Errorf("--cluster-key: %w", err)
		}
		p = sp
	case "etcd":
		ec := clientv3.Config{Endpoints: c.Etcd, DialTimeout: c.RequestTimeout}
		if err := checkEtcd(ec, c.RequestTimeout); err != nil {
			return nil, err
		}
		p, err = etcd.NewWithConfig(etcdBaseKey, ec)
	case "consul":
		p, err = consul.NewWithConfig(&api.Config{Address: c.Consul})
	case "k8s":
		p, err = newK8sProvider() // providers_k8s.go, behind a build tag
	default:
		return nil, fmt.Errorf("%w: --cluster-provider %q: not one of %v", ErrConfig, c.Provider, Providers)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: --cluster-provider %s: %w", ErrStart, c.Provider, err)
	}
	return p, nil
}

// checkEtcd reads from etcd once, within timeout: protoactor's provider
// reads with no deadline, so a server that is down would hang the start
// instead of failing it.
func checkEtcd(ec clientv3.Config, timeout time.Duration) error {
	cli, err := clientv3.New(ec)
	if err != nil {
		return fmt.Errorf("%w: --cluster-etcd %v: %w", ErrStart, ec.Endpoints, err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if _, err := cli.Get(ctx, etcdBaseKey, clientv3.WithCountOnly()); err != nil {
		return fmt.Errorf("%w: --cluster-etcd %v: %w", ErrStart, ec.Endpoints, err)
	}
	return nil
}
