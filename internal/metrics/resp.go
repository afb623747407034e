package metrics

import (
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The metrics of the node's Redis-protocol (RESP) listener: its
// connections, and the commands it answered by name, with their latency
// and their error replies.

// respCommands are the commands the RESP listener knows
// (internal/respserver's command table), lower-case and sorted, and
// "protocol", under which it counts a request it could not read: the only
// values of the command label besides respUnknown, which keeps the
// label's cardinality bounded whatever clients send.
var respCommands = []string{
	"append", "auth", "client", "command", "dbsize", "decr", "decrby", "del", "echo",
	"elcache.consistency", "elcache.meta", "elcache.writemode", "exists", "expire", "expireat",
	"flushall", "flushdb", "get", "getdel", "getex", "getrange", "getset", "hello", "incr", "incrby",
	"incrbyfloat", "info", "keys", "mget", "mset", "msetnx", "persist", "pexpire", "pexpireat",
	"ping", "protocol", "psetex", "pttl", "quit", "reset", "scan", "select", "set", "setex", "setnx", "setrange",
	"strlen", "time", "ttl", "type", "unlink",
}

const (
	// respUnknown is the command label of a command not in respCommands.
	respUnknown = "unknown"
	// respGenericError is the error label of an error reply whose first
	// word is not an error code (respErrorCode).
	respGenericError = "ERR"
	// respMaxErrorCode is the longest error code counted as itself.
	respMaxErrorCode = 16
)

// RESP is the metrics of a node's RESP listener. Its methods are safe for
// concurrent use and do nothing on a nil *RESP.
type RESP struct {
	open     prometheus.Gauge
	accepted prometheus.Counter
	calls    *prometheus.CounterVec   // command
	latency  *prometheus.HistogramVec // command
	errs     *prometheus.CounterVec   // command, error
	// commands holds every known command and respUnknown; built once by
	// newRESP and only read after.
	commands map[string]*respCommand
}

// respCommand is one command label's series, made the first time the
// command is answered (so that commands nobody sends export nothing) and
// kept, so that counting a command costs no allocation.
type respCommand struct {
	name    string
	series  atomic.Pointer[respSeries]
	codes   atomic.Pointer[map[string]prometheus.Counter] // error code -> its series; copied on write
	codesMu sync.Mutex                                    // serializes writers of codes
	owner   *RESP
}

// respSeries is a command's counter and histogram.
type respSeries struct {
	calls   prometheus.Counter
	latency prometheus.Observer
}

// newRESP returns the RESP metrics, each latency histogram with buckets.
func newRESP(buckets []float64) *RESP {
	r := &RESP{
		open: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "elcache_resp_connections",
			Help: "Connections open now on the node's RESP (Redis protocol) listener.",
		}),
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "elcache_resp_connections_total",
			Help: "Connections the node's RESP listener accepted.",
		}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "elcache_resp_commands_total",
			Help: "Commands the node's RESP listener answered, by command (\"unknown\" for a command it does not know).",
		}, []string{"command"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "elcache_resp_command_duration_seconds",
			Help:    "Time to answer a RESP command, by command.",
			Buckets: buckets,
		}, []string{"command"}),
		errs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "elcache_resp_errors_total",
			Help: "RESP commands answered with an error reply, by command and the reply's error code (its first word).",
		}, []string{"command", "error"}),
		commands: make(map[string]*respCommand, len(respCommands)+1),
	}
	for _, name := range append(slices.Clone(respCommands), respUnknown) {
		r.commands[name] = &respCommand{name: name, owner: r}
	}
	return r
}

// collectors returns what the registry collects of r.
func (r *RESP) collectors() []prometheus.Collector {
	return []prometheus.Collector{r.open, r.accepted, r.calls, r.latency, r.errs}
}

// Connected counts a connection that opened (delta +1) or closed (-1).
func (r *RESP) Connected(delta int) {
	if r == nil {
		return
	}
	r.open.Add(float64(delta))
	if delta > 0 {
		r.accepted.Add(float64(delta))
	}
}

// Command counts one command that started at start and has been answered:
// name is its first word, lower-case as Redis spells it ("get"); a command
// the listener does not know counts as "unknown". errPrefix is "" for a
// success, else the first word of the error reply ("ERR", "WRONGTYPE",
// "NOAUTH"...); one that is not an error code (up to 16 upper-case
// letters) counts as "ERR".
func (r *RESP) Command(name string, start time.Time, errPrefix string) {
	if r == nil {
		return
	}
	c := r.command(name)
	s := c.seriesOf()
	s.calls.Inc()
	s.latency.Observe(time.Since(start).Seconds())
	if errPrefix != "" {
		c.errorOf(respErrorCode(errPrefix)).Inc()
	}
}

// command returns name's entry, or the unknown command's.
func (r *RESP) command(name string) *respCommand {
	if c, ok := r.commands[name]; ok {
		return c
	}
	if c, ok := r.commands[strings.ToLower(name)]; ok {
		return c
	}
	return r.commands[respUnknown]
}

// seriesOf returns c's counter and histogram, made on first use.
func (c *respCommand) seriesOf() *respSeries {
	if s := c.series.Load(); s != nil {
		return s
	}
	// Two callers may both get here: the vectors hand both the same
	// children, so either pointer stored is right.
	c.series.CompareAndSwap(nil, &respSeries{
		calls:   c.owner.calls.WithLabelValues(c.name),
		latency: c.owner.latency.WithLabelValues(c.name),
	})
	return c.series.Load()
}

// errorOf returns the error counter of c and code, made on first use.
func (c *respCommand) errorOf(code string) prometheus.Counter {
	if m := c.codes.Load(); m != nil {
		if e, ok := (*m)[code]; ok {
			return e
		}
	}
	c.codesMu.Lock()
	defer c.codesMu.Unlock()
	next := map[string]prometheus.Counter{}
	if m := c.codes.Load(); m != nil {
		if e, ok := (*m)[code]; ok {
			return e
		}
		next = maps.Clone(*m)
	}
	e := c.owner.errs.WithLabelValues(c.name, code)
	next[code] = e
	c.codes.Store(&next)
	return e
}

// respErrorCode is the error label of an error reply whose first word is
// prefix: prefix itself when it is 1 to 16 upper-case letters, else "ERR".
func respErrorCode(prefix string) string {
	if prefix == "" || len(prefix) > respMaxErrorCode {
		return respGenericError
	}
	for i := range len(prefix) {
		if prefix[i] < 'A' || prefix[i] > 'Z' {
			return respGenericError
		}
	}
	return prefix
}

// RESPCommands returns the command names the RESP metrics count as
// themselves (a copy): the RESP listener's tests check it knows every
// command of the listener's table.
func RESPCommands() []string { return slices.Clone(respCommands) }
