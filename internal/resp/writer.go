package resp

import (
	"bufio"
	"io"
	"math"
	"strconv"
)

// headerRoom is the most a reply's type byte, number and CRLF take.
const headerRoom = 1 + 20 + 2

// Writer writes replies to a client connection through a 16 KiB buffer.
// It speaks RESP2 until SetProtocol(3). Its methods return nothing: the
// first write error is kept, later calls do nothing, and Flush returns it.
// It is not safe for concurrent use.
type Writer struct {
	bw    *bufio.Writer
	proto int
	// num holds a double's text while its length is written first; wide
	// enough for the longest float64 without an exponent.
	num [352]byte
}

// NewWriter returns a Writer of replies to w, speaking RESP2.
func NewWriter(w io.Writer) *Writer {
	return &Writer{bw: bufio.NewWriterSize(w, bufSize), proto: 2}
}

// SetProtocol sets the protocol the replies are written in: 3 for RESP3,
// anything else for RESP2. The listener calls it after HELLO.
func (w *Writer) SetProtocol(v int) {
	if v == 3 {
		w.proto = 3
	} else {
		w.proto = 2
	}
}

// Protocol returns the protocol the replies are written in, 2 or 3.
func (w *Writer) Protocol() int { return w.proto }

// Flush sends the buffered replies and returns the first write error, if
// any, of this Flush or of any earlier call.
func (w *Writer) Flush() error { return w.bw.Flush() }

// Buffered returns the bytes written and not yet sent.
func (w *Writer) Buffered() int { return w.bw.Buffered() }

// Simple writes a simple string, "+OK" for Simple("OK"). A CR or LF in s
// is written as a space, since a simple string cannot hold one.
func (w *Writer) Simple(s string) {
	w.bw.WriteByte('+')
	w.line(s)
}

// Error writes an error reply; s is the whole message, starting with its
// code, as "ERR syntax error". A CR or LF in s is written as a space.
func (w *Writer) Error(s string) {
	w.bw.WriteByte('-')
	w.line(s)
}

// line writes s with CR and LF made spaces, then CRLF.
func (w *Writer) line(s string) {
	from := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\r' || s[i] == '\n' {
			w.bw.WriteString(s[from:i])
			w.bw.WriteByte(' ')
			from = i + 1
		}
	}
	w.bw.WriteString(s[from:])
	w.bw.WriteString("\r\n")
}

// Int writes an integer, ":n".
func (w *Writer) Int(n int64) { w.header(':', n) }

// Bulk writes a bulk string, "$len" then b.
func (w *Writer) Bulk(b []byte) {
	w.header('$', int64(len(b)))
	w.bw.Write(b)
	w.bw.WriteString("\r\n")
}

// BulkString writes s as a bulk string.
func (w *Writer) BulkString(s string) {
	w.header('$', int64(len(s)))
	w.bw.WriteString(s)
	w.bw.WriteString("\r\n")
}

// Null writes the null reply: "$-1" (a null bulk string) in RESP2, "_" in
// RESP3.
func (w *Writer) Null() {
	if w.proto == 3 {
		w.bw.WriteString("_\r\n")
	} else {
		w.bw.WriteString("$-1\r\n")
	}
}

// NullArray writes the null array: "*-1" in RESP2, "_" in RESP3.
func (w *Writer) NullArray() {
	if w.proto == 3 {
		w.bw.WriteString("_\r\n")
	} else {
		w.bw.WriteString("*-1\r\n")
	}
}

// Array writes the header of an array of n replies, "*n"; the n replies
// follow. A negative n writes NullArray.
func (w *Writer) Array(n int) { w.aggregate('*', '*', n, 1) }

// Map writes the header of a map of n pairs, "%n" in RESP3; in RESP2 a
// flat array of the 2n keys and values, "*2n". The n keys and values
// follow, alternating. A negative n writes NullArray.
func (w *Writer) Map(n int) { w.aggregate('%', '*', n, 2) }

// Set writes the header of a set of n replies, "~n" in RESP3, "*n" in
// RESP2; the n replies follow. A negative n writes NullArray.
func (w *Writer) Set(n int) { w.aggregate('~', '*', n, 1) }

// aggregate writes the header of n items, with the type byte resp3 or
// resp2 and, in RESP2, n*per replies.
func (w *Writer) aggregate(resp3, resp2 byte, n, per int) {
	switch {
	case n < 0:
		w.NullArray()
	case w.proto == 3:
		w.header(resp3, int64(n))
	default:
		w.header(resp2, int64(n)*int64(per))
	}
}

// Double writes a floating-point number: ",f" in RESP3, a bulk string of
// the same text in RESP2. The text is the shortest decimal that reads back
// as f, without an exponent ("3.5", "100000000000000000000", "0.1"), as
// Redis writes INCRBYFLOAT's result; infinities and NaN are "inf", "-inf"
// and "nan".
func (w *Writer) Double(f float64) {
	var text []byte
	switch {
	case math.IsInf(f, 1):
		text = append(w.num[:0], "inf"...)
	case math.IsInf(f, -1):
		text = append(w.num[:0], "-inf"...)
	case math.IsNaN(f):
		text = append(w.num[:0], "nan"...)
	default:
		text = strconv.AppendFloat(w.num[:0], f, 'f', -1, 64)
	}
	if w.proto == 3 {
		w.bw.WriteByte(',')
		w.bw.Write(text)
		w.bw.WriteString("\r\n")
	} else {
		w.Bulk(text)
	}
}

// Bool writes a boolean: "#t" or "#f" in RESP3, the integer 1 or 0 in
// RESP2.
func (w *Writer) Bool(b bool) {
	switch {
	case w.proto == 3 && b:
		w.bw.WriteString("#t\r\n")
	case w.proto == 3:
		w.bw.WriteString("#f\r\n")
	case b:
		w.bw.WriteString(":1\r\n")
	default:
		w.bw.WriteString(":0\r\n")
	}
}

// Verbatim writes a verbatim string, s with its format (three letters, as
// "txt" or "mkd"; any other length is written as "txt"): "=len" then
// "txt:" and s in RESP3, a bulk string of s in RESP2.
func (w *Writer) Verbatim(format, s string) {
	if w.proto != 3 {
		w.BulkString(s)
		return
	}
	if len(format) != 3 {
		format = "txt"
	}
	w.header('=', int64(len(format)+1+len(s)))
	w.bw.WriteString(format)
	w.bw.WriteByte(':')
	w.bw.WriteString(s)
	w.bw.WriteString("\r\n")
}

// header writes a type byte, a number and CRLF, formatted in the buffer's
// free space (made room for first) so that nothing is allocated.
func (w *Writer) header(kind byte, n int64) {
	if w.bw.Available() < headerRoom {
		w.bw.Flush()
	}
	b := w.bw.AvailableBuffer()
	b = append(b, kind)
	b = strconv.AppendInt(b, n, 10)
	b = append(b, '\r', '\n')
	w.bw.Write(b)
}
