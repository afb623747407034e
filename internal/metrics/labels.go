package metrics

import (
	"strings"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// RequestLabels names a request's operation and level for the metrics:
// reads by their level (defaultLevel when they name none), writes as
// "write". Other requests have no labels ("", "") and are not counted.
func RequestLabels(req any, defaultLevel cachev1.Consistency) (op, level string) {
	lvl := func(o *cachev1.ReadOptions) string {
		c := o.GetConsistency()
		if c == cachev1.Consistency_CONSISTENCY_UNSPECIFIED {
			c = defaultLevel
		}
		return strings.ToLower(strings.TrimPrefix(c.String(), "CONSISTENCY_"))
	}
	switch r := req.(type) {
	case *cachev1.GetRequest:
		return "get", lvl(r.GetOptions())
	case *cachev1.MultiGetRequest:
		return "multi_get", lvl(r.GetOptions())
	case *cachev1.ScanRequest:
		return "scan", lvl(r.GetOptions())
	case *cachev1.PutRequest:
		return "put", "write"
	case *cachev1.DeleteRequest:
		return "delete", "write"
	case *cachev1.CompareAndSetRequest:
		return "compare_and_set", "write"
	case *cachev1.MultiPutRequest:
		return "multi_put", "write"
	case *cachev1.MutateRequest:
		return "mutate", "write"
	}
	return "", ""
}

// IsWrite reports whether req is a write (needs the write role).
func IsWrite(req any) bool {
	_, level := RequestLabels(req, cachev1.Consistency_CONSISTENCY_UNSPECIFIED)
	return level == "write"
}
