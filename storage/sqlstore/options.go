package sqlstore

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Options configures a Store. The zero value of a field takes its default
// (see DefaultOptions).
type Options struct {
	// Table is the table's name. Default "elcache_entries". Names are quoted,
	// so they are case-sensitive in PostgreSQL: a table created there
	// without quotes has a lower-case name.
	Table string
	// Columns names the table's columns; an empty name takes the default.
	Columns Columns
	// CreateTable makes Open create the table if it is missing (with
	// ApplySchema). Without it, Open fails if the table or a column is
	// missing.
	CreateTable bool
	// BusyTimeout (SQLite) is how long a statement waits for a lock held by
	// another connection or process before it fails with SQLITE_BUSY (a
	// transient error). Default 5s.
	BusyTimeout time.Duration
	// MaxConns (PostgreSQL) is the size of the connection pool. Zero keeps
	// the URL's pool_max_conns or pgxpool's default (4 or the CPU count,
	// whichever is larger).
	MaxConns int32
}

// Columns names the table's columns.
type Columns struct {
	Key            string // default "key"
	Value          string // default "value"
	Version        string // default "version"
	Deleted        string // default "deleted"
	IdempotencyKey string // default "idempotency_key"
	UpdatedAt      string // default "updated_at"
}

// DefaultTable is the default table name.
const DefaultTable = "elcache_entries"

// defaultBusyTimeout is the default Options.BusyTimeout.
const defaultBusyTimeout = 5 * time.Second

// maxIdentLen is PostgreSQL's limit on identifiers (NAMEDATALEN-1); longer
// names would be truncated silently.
const maxIdentLen = 63

// DefaultOptions returns complete options with the default names, without
// CreateTable.
func DefaultOptions() Options {
	return Options{
		Table: DefaultTable,
		Columns: Columns{
			Key:            "key",
			Value:          "value",
			Version:        "version",
			Deleted:        "deleted",
			IdempotencyKey: "idempotency_key",
			UpdatedAt:      "updated_at",
		},
		BusyTimeout: defaultBusyTimeout,
	}
}

// withDefaults returns o with every zero field set to its default.
func (o Options) withDefaults() Options {
	d := DefaultOptions()
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&o.Table, d.Table)
	def(&o.Columns.Key, d.Columns.Key)
	def(&o.Columns.Value, d.Columns.Value)
	def(&o.Columns.Version, d.Columns.Version)
	def(&o.Columns.Deleted, d.Columns.Deleted)
	def(&o.Columns.IdempotencyKey, d.Columns.IdempotencyKey)
	def(&o.Columns.UpdatedAt, d.Columns.UpdatedAt)
	if o.BusyTimeout == 0 {
		o.BusyTimeout = d.BusyTimeout
	}
	return o
}

// Validate reports every problem with the options, after defaults are
// applied to zero fields.
func (o Options) Validate() error {
	o = o.withDefaults()
	var errs []error
	if err := checkIdent(o.Table); err != nil {
		errs = append(errs, fmt.Errorf("sqlstore: Table: %w", err))
	}
	seen := map[string]string{}
	for _, c := range o.Columns.list() {
		if err := checkIdent(c.name); err != nil {
			errs = append(errs, fmt.Errorf("sqlstore: Columns.%s: %w", c.field, err))
			continue
		}
		// SQLite compares names without regard to case.
		if other, dup := seen[strings.ToLower(c.name)]; dup {
			errs = append(errs, fmt.Errorf("sqlstore: Columns.%s and Columns.%s are both %q", other, c.field, c.name))
		}
		seen[strings.ToLower(c.name)] = c.field
	}
	if o.BusyTimeout < 0 {
		errs = append(errs, fmt.Errorf("sqlstore: BusyTimeout must not be negative, got %v", o.BusyTimeout))
	}
	if o.MaxConns < 0 {
		errs = append(errs, fmt.Errorf("sqlstore: MaxConns must not be negative, got %d", o.MaxConns))
	}
	return errors.Join(errs...)
}

type namedColumn struct{ field, name string }

// list returns the columns in table order with their field names.
func (c Columns) list() []namedColumn {
	return []namedColumn{
		{"Key", c.Key},
		{"Value", c.Value},
		{"Version", c.Version},
		{"Deleted", c.Deleted},
		{"IdempotencyKey", c.IdempotencyKey},
		{"UpdatedAt", c.UpdatedAt},
	}
}

// checkIdent accepts names made of ASCII letters, digits and underscores
// that do not start with a digit, up to maxIdentLen bytes. Such a name needs
// no escaping inside double quotes in either dialect.
func checkIdent(s string) error {
	if s == "" {
		return errors.New("name is empty")
	}
	if len(s) > maxIdentLen {
		return fmt.Errorf("name %q is %d bytes, over the limit of %d", s, len(s), maxIdentLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case '0' <= c && c <= '9':
			if i == 0 {
				return fmt.Errorf("name %q starts with a digit", s)
			}
		default:
			return fmt.Errorf("name %q may hold only letters, digits and underscores", s)
		}
	}
	return nil
}

// quote quotes a name that passed checkIdent.
func quote(s string) string { return `"` + s + `"` }
