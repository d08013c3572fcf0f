package main

import (
	"github.com/tokenproxy/tokenproxy/admin"
	"github.com/tokenproxy/tokenproxy/compliance"
	"github.com/tokenproxy/tokenproxy/console"
	"github.com/tokenproxy/tokenproxy/policy"
)

// startConsole mounts the compliance console on the admin listener (HTTPS
// whenever compliance is enabled) when compliance.console.enabled; stop
// ends its sampler and any verification under way.
func startConsole(a *app, cfg *policy.Config, e *engine, srv *admin.Server, svc *compliance.Service) (stop func(), err error) {
	if !cfg.Compliance.Enabled || !cfg.Compliance.Console.Enabled {
		return func() {}, nil
	}
	o := console.Options{Service: svc, Config: cfg.Compliance.Console, Log: a.log}
	if a.metricsReg != nil {
		o.Gatherer = a.metricsReg
	}
	if cfg.Store.Backend == "etcd" {
		o.Fresh = e.m.Fresh
		if o.Cluster, err = consoleCluster(cfg); err != nil { // console_cluster.go
			return nil, err
		}
	}
	c, err := console.New(o)
	if err != nil {
		return nil, err
	}
	c.Register(srv)
	c.Start()
	return c.Close, nil
}
