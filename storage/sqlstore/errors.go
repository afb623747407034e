package sqlstore

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

var (
	// ErrClosed is returned by operations on a closed Store.
	ErrClosed = errors.New("sqlstore: closed")
	// ErrInvalidRow is wrapped by Write's errors for rows it refuses before
	// touching the database.
	ErrInvalidRow = errors.New("sqlstore: invalid row")
)

// IsTransient reports whether retrying the operation that returned err
// could succeed without anyone changing the configuration or the schema: the
// database could not be reached or dropped the connection, is starting up or
// shutting down, is out of connections, the operation lost a serialization
// conflict or a deadlock, hit a lock or statement timeout, SQLite was busy,
// or the context's deadline passed. It is false for nil, for a cancelled
// context (the caller gave up), and for permanent errors: bad SQL, a missing
// table or column, permissions, constraint violations, invalid rows, a
// closed Store.
func IsTransient(err error) bool {
	if err == nil || errors.Is(err, ErrClosed) || errors.Is(err, ErrInvalidRow) {
		return false
	}
	// The server's own verdict comes first: a connection attempt that the
	// server refused (bad password, unknown database) is a ConnectError
	// wrapping a PgError, and permanent.
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return transientSQLState(pgErr.Code)
	}
	var liteErr *sqlite.Error
	if errors.As(err, &liteErr) {
		switch liteErr.Code() & 0xff { // the primary code of an extended one
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return true
		}
		return false
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) {
		return true
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case errors.As(err, &connectErr), errors.As(err, &netErr),
		errors.Is(err, pgconn.ErrConnClosed), pgconn.SafeToRetry(err),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EPIPE):
		return true
	}
	return false
}

// transientSQLState reports whether a PostgreSQL error code is worth a
// retry (https://www.postgresql.org/docs/current/errcodes-appendix.html).
func transientSQLState(code string) bool {
	switch code {
	case "40001", // serialization_failure
		"40P01", // deadlock_detected
		"55P03", // lock_not_available (lock_timeout)
		"57014", // query_canceled (statement_timeout)
		"57P01", // admin_shutdown
		"57P02", // crash_shutdown
		"57P03", // cannot_connect_now (starting up, shutting down)
		"57P05": // idle_session_timeout
		return true
	}
	// Class 08: connection exceptions. Class 53: insufficient resources
	// (too many connections, out of memory or disk).
	return strings.HasPrefix(code, "08") || strings.HasPrefix(code, "53")
}

// IsRowError reports whether err is the database refusing the rows of a
// write for what they hold, while it is otherwise healthy: a value it
// cannot store, a constraint or check of the table, a key too long for its
// index. Writing the same rows again fails the same way; other rows go
// through.
func IsRowError(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrInvalidRow) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 22: data exception. Class 23: integrity constraint
		// violation. Class 54: program limit exceeded (an index row too
		// large).
		return strings.HasPrefix(pgErr.Code, "22") || strings.HasPrefix(pgErr.Code, "23") || strings.HasPrefix(pgErr.Code, "54")
	}
	var liteErr *sqlite.Error
	if errors.As(err, &liteErr) {
		switch liteErr.Code() & 0xff {
		case sqlite3.SQLITE_CONSTRAINT, sqlite3.SQLITE_TOOBIG, sqlite3.SQLITE_MISMATCH:
			return true
		}
	}
	return false
}
