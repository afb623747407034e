package metrics

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"
)

// The operator's HTTP listeners of a node: /metrics (Metrics.Handler) and
// the Go profiler (ProfilerHandler), each on its own address.

// Serve serves h on addr in the background and returns the server (Close
// stops it) and the address it listens on; what names the listener in
// errors and logs.
func Serve(what, addr string, h http.Handler, log *slog.Logger) (*http.Server, string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("metrics: %s address: %w", what, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error(what+" http server stopped", "err", err)
		}
	}()
	log.Info(what+" http listening", "addr", ln.Addr().String())
	return srv, ln.Addr().String(), nil
}

// ProfilerHandler serves the Go profiler under /debug/pprof/. Profiles
// show the process's internals: serve it on a private address only.
func ProfilerHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// CheckListenAddr checks an HTTP listen address: host:port, host optional.
func CheckListenAddr(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return err
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("bad port %q", port)
	}
	return nil
}
