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
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	var err error
	n.adminHTTP, n.adminAddr, err = n.serveHTTP("admin", n.cfg.AdminAddr, mux)
	return err
}

// AdminAddr returns the address the profiler listens on, or "" when
// Config.AdminAddr is not set.
func (n *Node) AdminAddr() string { return n.adminAddr }

// serveHTTP serves h on addr in the background and returns the server
// (Close stops it) and the address it listens on.
func (n *Node) serveHTTP(what, addr string, h http.Handler) (*http.Server, string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("node: %s address: %w", what, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error(what+" http server stopped", "err", err)
		}
	}()
	n.log.Info(what+" http listening", "addr", ln.Addr().String())
	return srv, ln.Addr().String(), nil
}
