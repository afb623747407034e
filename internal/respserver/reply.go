package respserver

import (
	"fmt"
	"strings"

	"github.com/elcache/elcache/internal/resp"
)

// reply is a command's answer, written after the command (and, in a
// batch, after the commands before it). The common answers need no
// allocation; others are written by a function.
type reply struct {
	kind replyKind
	s    string
	n    int64
	b    []byte
	f    func(w *resp.Writer)
}

type replyKind uint8

const (
	kindNone replyKind = iota // no answer yet (check passed)
	kindSimple
	kindError
	kindInt
	kindBulk
	kindNull
	kindFunc
)

var okReply = reply{kind: kindSimple, s: "OK"}

func simpleReply(s string) reply             { return reply{kind: kindSimple, s: s} }
func errorReply(s string) reply              { return reply{kind: kindError, s: s} }
func intReply(n int64) reply                 { return reply{kind: kindInt, n: n} }
func bulkReply(b []byte) reply               { return reply{kind: kindBulk, b: b} }
func nullReply() reply                       { return reply{kind: kindNull} }
func funcReply(f func(w *resp.Writer)) reply { return reply{kind: kindFunc, f: f} }

func boolReply(b bool) reply {
	if b {
		return intReply(1)
	}
	return intReply(0)
}

func errorf(format string, args ...any) reply {
	return errorReply(fmt.Sprintf(format, args...))
}

func (r reply) write(w *resp.Writer) {
	switch r.kind {
	case kindSimple:
		w.Simple(r.s)
	case kindError:
		w.Error(r.s)
	case kindInt:
		w.Int(r.n)
	case kindBulk:
		w.Bulk(r.b)
	case kindNull:
		w.Null()
	case kindFunc:
		r.f(w)
	}
}

// errPrefix is the first word of an error reply, "" for any other.
func (r reply) errPrefix() string {
	if r.kind != kindError {
		return ""
	}
	word, _, _ := strings.Cut(r.s, " ")
	return word
}

// unknownCommand is Redis's answer to a command it does not know.
func unknownCommand(args [][]byte) reply {
	var b strings.Builder
	for _, a := range args[1:] {
		if b.Len() > 128 {
			break
		}
		fmt.Fprintf(&b, "'%s' ", truncate(a, 64))
	}
	return errorf("ERR unknown command '%s', with args beginning with: %s", truncate(args[0], 128), b.String())
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
