package jepsen

import (
	"fmt"
	"sort"
)

// AuditRow is one row write PostgreSQL made to the cache's table, as its
// audit trigger recorded it.
type AuditRow struct {
	// Seq orders the audit rows by commit.
	Seq     int64
	Key     string
	Version uint64
	Deleted bool
}

// DBRow is a row of the cache's table at the end of the run.
type DBRow struct {
	Value   string
	Version uint64
	Deleted bool
}

// dbModeFigure names the figure that counts acknowledged writes of a
// write mode that writes to the database; "" for cache_only.
func dbModeFigure(mode string) string {
	switch mode {
	case ModeWriteThrough:
		return "writes_through"
	case ModeWriteBack:
		return "writes_back"
	case ModeWriteAround:
		return "writes_around"
	}
	return ""
}

// CheckDatabase checks the writemode workload against the database: the
// audit (every row write, in commit order) and the table's final rows,
// read after write-back flushed. A key's versions in the audit must
// strictly increase: the database never gets an older version, or the
// same one again, after a newer one. Every acknowledged write_through or
// write_around write must be in the audit: a row of its key with its
// version or a newer one. At the end, every key with an acknowledged
// write_through, write_back or write_around write must hold at least the
// newest such version, and a row holding the version of an acknowledged
// write must hold its value. Writes of unknown outcome prove nothing
// either way. Ops of other workloads are ignored.
//
// The check does not look for rows whose version no write produced: the
// versions of writes of unknown outcome are unknown.
func CheckDatabase(ops []Op, audit []AuditRow, rows map[string]DBRow) Result {
	res := Result{Checker: "database", Figures: make(map[string]float64)}
	for _, mode := range []string{ModeWriteThrough, ModeWriteBack, ModeWriteAround} {
		res.Figures[dbModeFigure(mode)] = 0
	}
	var list anomalyList

	sorted := append([]AuditRow(nil), audit...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Seq < sorted[j].Seq })
	last := make(map[string]AuditRow) // the key's previous audit row
	newest := make(map[string]uint64) // the highest version in the audit
	for _, row := range sorted {
		if prev, ok := last[row.Key]; ok && row.Version <= prev.Version {
			list.add("db-version-order", row.Key, 0,
				"audit row %d wrote %s after row %d wrote %s: the database got an older or the same version after a newer one",
				row.Seq, auditVersion(row), prev.Seq, auditVersion(prev))
		}
		last[row.Key] = row
		newest[row.Key] = max(newest[row.Key], row.Version)
	}
	res.Figures["audit_rows"] = float64(len(audit))

	keys := make(map[string]bool)
	acked := make(map[string]*Op)                // the newest acknowledged database write of a key
	byVersion := make(map[string]map[uint64]*Op) // acknowledged writes of a key by version
	for i := range ops {
		op := &ops[i]
		if op.Workload != "writemode" || (op.F != FPut && op.F != FCAS) {
			continue
		}
		res.Ops++
		keys[op.Key] = true
		if !ackedWrite(op) {
			continue
		}
		if byVersion[op.Key] == nil {
			byVersion[op.Key] = make(map[uint64]*Op)
		}
		byVersion[op.Key][op.Version] = op
		figure := dbModeFigure(op.Mode)
		if figure == "" {
			continue
		}
		res.Figures[figure]++
		if w := acked[op.Key]; w == nil || op.Version > w.Version {
			acked[op.Key] = op
		}
		if v, ok := newest[op.Key]; op.Mode != ModeWriteBack && (!ok || v < op.Version) {
			if !ok {
				list.add("db-missing-write", op.Key, op.End,
					"%s was acknowledged, but the audit has no row of the key", describeOp(*op))
			} else {
				list.add("db-missing-write", op.Key, op.End,
					"%s was acknowledged, but the audit's newest version of the key is v%d", describeOp(*op), v)
			}
		}
	}
	res.Figures["keys"] = float64(len(keys))

	ackedKeys := make([]string, 0, len(acked))
	for k := range acked {
		ackedKeys = append(ackedKeys, k)
	}
	sort.Strings(ackedKeys)
	for _, k := range ackedKeys {
		w := acked[k]
		row, ok := rows[k]
		switch {
		case !ok:
			list.add("db-final-version", k, 0, "the database has no row for the key at the end, but %s", describeOp(*w))
			continue
		case row.Deleted:
			list.add("db-final-version", k, 0, "the database's row for the key is deleted (v%d) at the end, but %s", row.Version, describeOp(*w))
			continue
		case row.Version < w.Version:
			list.add("db-final-version", k, 0, "the database holds v%d of the key at the end, older than %s", row.Version, describeOp(*w))
		}
	}
	// Every final row holding an acknowledged write's version must hold
	// its value, whatever the mode.
	rowKeys := make([]string, 0, len(rows))
	for k := range rows {
		rowKeys = append(rowKeys, k)
	}
	sort.Strings(rowKeys)
	for _, k := range rowKeys {
		row := rows[k]
		if w := byVersion[k][row.Version]; w != nil && !row.Deleted && row.Value != w.Value {
			list.add("db-wrong-value", k, 0, "the database holds %q at v%d of the key at the end, but %s", row.Value, row.Version, describeOp(*w))
		}
	}
	list.finish(&res)
	return res
}

func auditVersion(row AuditRow) string {
	if row.Deleted {
		return fmt.Sprintf("a delete at v%d", row.Version)
	}
	return fmt.Sprintf("v%d", row.Version)
}
