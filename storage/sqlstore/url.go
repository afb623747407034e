package sqlstore

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
)

// Dialect is the SQL dialect of a database.
type Dialect string

// The supported dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// MaxKeyBytes is the longest key the dialect's table can hold, or 0 for no
// limit short of the value limits. A key is the table's primary key, and a
// PostgreSQL btree index entry holds at most 2,704 bytes with its header
// (an incompressible key of 2,700 bytes is refused); 2,560 leaves a margin.
func (d Dialect) MaxKeyBytes() int {
	if d == Postgres {
		return 2560
	}
	return 0
}

// ErrBadURL is wrapped by the errors for database URLs that cannot be used.
var ErrBadURL = errors.New("sqlstore: bad database URL")

// target is a parsed database URL.
type target struct {
	dialect Dialect
	// path is the SQLite file (cleaned; relative to the working directory
	// unless absolute).
	path string
	// conn is the PostgreSQL connection string as given.
	conn string
	// safe is the URL with any password replaced, for messages.
	safe string
}

// DialectOf returns the dialect of a database URL without connecting, for
// example to print the schema for it.
func DialectOf(rawURL string) (Dialect, error) {
	t, err := parseURL(rawURL)
	if err != nil {
		return "", err
	}
	return t.dialect, nil
}

// parseURL checks a database URL. Its errors never hold the password.
func parseURL(raw string) (target, error) {
	safe := Redact(raw)
	bad := func(format string, args ...any) (target, error) {
		return target{}, fmt.Errorf("%w %q: %s", ErrBadURL, safe, fmt.Sprintf(format, args...))
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok || scheme == "" {
		return bad("no scheme: use sqlite:///absolute/path.db, sqlite://relative/path.db or postgres://user@host:port/database")
	}
	switch strings.ToLower(scheme) {
	case "sqlite":
		if strings.ContainsAny(rest, "?#") {
			return bad("SQLite URLs take no query parameters or fragments")
		}
		p, err := url.PathUnescape(rest)
		if err != nil {
			return bad("bad escape in the path: %v", err)
		}
		if p == "" || strings.HasSuffix(p, "/") {
			return bad("the path must name a file")
		}
		if strings.ContainsAny(p, "?\x00") {
			return bad("the path must not contain '?' or NUL")
		}
		if !filepath.IsAbs(p) {
			// A leading "./" keeps a relative name such as "file:x.db"
			// from being read as an SQLite URI.
			p = "." + string(filepath.Separator) + p
		}
		return target{dialect: SQLite, path: filepath.Clean(p), safe: safe}, nil
	case "postgres", "postgresql":
		u, err := url.Parse(raw)
		if err != nil {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err // url.Error repeats the URL, password included
			}
			return bad("%v", err)
		}
		if u.Opaque != "" {
			return bad("expected postgres://user@host:port/database")
		}
		return target{dialect: Postgres, conn: raw, safe: safe}, nil
	default:
		return bad("unknown scheme %q: use sqlite or postgres", scheme)
	}
}

var (
	// urlPassword matches the password of a URL's userinfo, up to the last
	// '@' so that an unescaped '@' or '/' in the password is covered too.
	urlPassword = regexp.MustCompile(`^([^:/?#]*://[^:@/?#]*:).*@`)
	// kvPassword matches a password=... parameter in a query string or a
	// keyword/value connection string, quoted or not.
	kvPassword = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'?|[^&\s#]*)`)
)

// Redact returns a database URL (or any connection string) with its
// password replaced by "xxxxx", for logs and error messages. It works on
// malformed URLs too, erring towards hiding more.
func Redact(raw string) string {
	s := urlPassword.ReplaceAllString(raw, "${1}xxxxx@")
	return kvPassword.ReplaceAllString(s, "${1}xxxxx")
}
