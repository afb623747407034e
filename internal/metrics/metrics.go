package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// Config is what the metrics need from the node.
type Config struct {
	// Snapshot returns the node's state; every scrape calls it once.
	// Required.
	Snapshot func() Snapshot
	// DefaultLevel is the read level of a read that names none (the node's
	// default consistency): the level label it is counted under.
	DefaultLevel cachev1.Consistency
	// ErrorStatus turns a request's error into its gRPC status error,
	// whose code labels elcache_request_errors_total. Nil: the error as it
	// is.
	ErrorStatus func(error) error
	// Logger hears of errors serving /metrics. Nil: slog.Default().
	Logger *slog.Logger
}

// Validate reports every problem of c.
func (c Config) Validate() error {
	if c.Snapshot == nil {
		return errors.New("metrics: Config.Snapshot is nil")
	}
	return nil
}

// Metrics are a node's Prometheus registry: the request metrics, its RESP
// listener's metrics, the state read at scrape time, and the Go runtime
// and process metrics.
type Metrics struct {
	cfg      Config
	reg      *prometheus.Registry
	requests *prometheus.CounterVec   // op, level
	latency  *prometheus.HistogramVec // op, level
	errors   *prometheus.CounterVec   // op, code
	resp     *RESP
}

// latencyBuckets are the buckets of the latency histograms, in seconds:
// 100µs to 5s.
var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

// New returns the metrics of a node described by cfg.
func New(cfg Config) (*Metrics, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.ErrorStatus == nil {
		cfg.ErrorStatus = func(err error) error { return err }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	m := &Metrics{
		cfg: cfg,
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "elcache_requests_total",
			Help: "Client requests this node answered (pipelined calls included), by operation and read level (writes: \"write\").",
		}, []string{"op", "level"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "elcache_request_duration_seconds",
			Help:    "Time to answer a client request, by operation and read level.",
			Buckets: latencyBuckets,
		}, []string{"op", "level"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "elcache_request_errors_total",
			Help: "Client requests that failed, by operation and gRPC code.",
		}, []string{"op", "code"}),
		resp: newRESP(latencyBuckets),
	}
	for _, c := range append([]prometheus.Collector{m.requests, m.latency, m.errors, &stateCollector{snapshot: cfg.Snapshot},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})}, m.resp.collectors()...) {
		if err := m.reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	return m, nil
}

// observe records one finished request.
func (m *Metrics) observe(op, level string, start time.Time, err error) {
	m.requests.WithLabelValues(op, level).Inc()
	m.latency.WithLabelValues(op, level).Observe(time.Since(start).Seconds())
	if err != nil {
		m.errors.WithLabelValues(op, status.Code(m.cfg.ErrorStatus(err)).String()).Inc()
	}
}

var _ grpc.UnaryServerInterceptor = (*Metrics)(nil).UnaryInterceptor

// UnaryInterceptor counts the Cache service's data requests; the Pipeline
// stream counts its calls itself (ObserveCall).
func (m *Metrics) UnaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if m == nil || !strings.HasPrefix(info.FullMethod, "/"+cachev1.Cache_ServiceDesc.ServiceName+"/") {
		return handler(ctx, req)
	}
	op, level := RequestLabels(req, m.cfg.DefaultLevel)
	if op == "" {
		return handler(ctx, req)
	}
	start := time.Now()
	resp, err := handler(ctx, req)
	m.observe(op, level, start, err)
	return resp, err
}

// ObserveCall counts a pipelined call that started at start and ended
// with out in the request metrics, like UnaryInterceptor counts an RPC.
func (m *Metrics) ObserveCall(c *cachev1.Call, start time.Time, out *cachev1.CallResult) {
	if m == nil {
		return
	}
	op, level := RequestLabels(cachev1.CallRequest(c), m.cfg.DefaultLevel)
	if op == "" {
		return
	}
	var err error
	if e := out.Error; e != nil {
		err = status.Error(codes.Code(e.Code), e.Message)
	}
	m.observe(op, level, start, err)
}

// RefusedStream counts a stream the guard refused as an error of its
// method (UnaryInterceptor counts refused RPCs).
func (m *Metrics) RefusedStream(fullMethod string, err error) {
	if m == nil {
		return
	}
	_, method, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	m.errors.WithLabelValues(strings.ToLower(method), status.Code(err).String()).Inc()
}

// RESP returns the metrics of the node's RESP listener; nil on a nil m,
// whose *RESP methods then do nothing.
func (m *Metrics) RESP() *RESP {
	if m == nil {
		return nil
	}
	return m.resp
}

// Handler serves the metrics at /metrics, as Prometheus scrapes them.
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorLog: slogPrinter{m.cfg.Logger}}))
	return mux
}

// slogPrinter logs promhttp's errors.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.log.Warn("metrics", "err", fmt.Sprint(v...)) }
