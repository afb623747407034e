package node

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// startAdminHTTP serves the Go profiler under /debug/pprof/ on
// Config.AdminAddr, when it is set. Profiles show the process's internals:
// bind the address to a private interface.
func (n *Node) startAdminHTTP() error {
	if n.cfg.AdminAddr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", n.cfg.AdminAddr)
	if err != nil {
		return fmt.Errorf("node: admin address: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	n.adminHTTP = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := n.adminHTTP.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("admin http server stopped", "err", err)
		}
	}()
	n.adminAddr = ln.Addr().String()
	n.log.Info("admin http listening", "addr", n.adminAddr)
	return nil
}

// AdminAddr returns the address the profiler listens on, or "" when
// Config.AdminAddr is not set.
func (n *Node) AdminAddr() string { return n.adminAddr }
