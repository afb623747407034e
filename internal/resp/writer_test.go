package resp

import (
	"bytes"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
)

func TestWriter(t *testing.T) {
	tests := []struct {
		name         string
		write        func(w *Writer)
		resp2, resp3 string
	}{
		{"simple", func(w *Writer) { w.Simple("OK") }, "+OK\r\n", "+OK\r\n"},
		{"simple with newlines", func(w *Writer) { w.Simple("a\r\nb\nc") }, "+a  b c\r\n", "+a  b c\r\n"},
		{"error", func(w *Writer) { w.Error("ERR syntax error") }, "-ERR syntax error\r\n", "-ERR syntax error\r\n"},
		{"error with newlines", func(w *Writer) { w.Error("ERR bad\r\nthing\r") }, "-ERR bad  thing \r\n", "-ERR bad  thing \r\n"},
		{"int", func(w *Writer) { w.Int(42) }, ":42\r\n", ":42\r\n"},
		{"int zero", func(w *Writer) { w.Int(0) }, ":0\r\n", ":0\r\n"},
		{"int min", func(w *Writer) { w.Int(math.MinInt64) }, ":-9223372036854775808\r\n", ":-9223372036854775808\r\n"},
		{"bulk", func(w *Writer) { w.Bulk([]byte("hello")) }, "$5\r\nhello\r\n", "$5\r\nhello\r\n"},
		{"bulk binary", func(w *Writer) { w.Bulk([]byte("a\r\n\x00")) }, "$4\r\na\r\n\x00\r\n", "$4\r\na\r\n\x00\r\n"},
		{"bulk empty", func(w *Writer) { w.Bulk(nil) }, "$0\r\n\r\n", "$0\r\n\r\n"},
		{"bulk string", func(w *Writer) { w.BulkString("héllo") }, "$6\r\nhéllo\r\n", "$6\r\nhéllo\r\n"},
		{"null", func(w *Writer) { w.Null() }, "$-1\r\n", "_\r\n"},
		{"null array", func(w *Writer) { w.NullArray() }, "*-1\r\n", "_\r\n"},
		{"array", func(w *Writer) { w.Array(2); w.Int(1); w.BulkString("a") }, "*2\r\n:1\r\n$1\r\na\r\n", "*2\r\n:1\r\n$1\r\na\r\n"},
		{"array empty", func(w *Writer) { w.Array(0) }, "*0\r\n", "*0\r\n"},
		{"array negative", func(w *Writer) { w.Array(-1) }, "*-1\r\n", "_\r\n"},
		{"map", func(w *Writer) { w.Map(2); w.BulkString("a"); w.Int(1); w.BulkString("b"); w.Null() },
			"*4\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n$-1\r\n", "%2\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n_\r\n"},
		{"map empty", func(w *Writer) { w.Map(0) }, "*0\r\n", "%0\r\n"},
		{"map negative", func(w *Writer) { w.Map(-3) }, "*-1\r\n", "_\r\n"},
		{"set", func(w *Writer) { w.Set(1); w.BulkString("x") }, "*1\r\n$1\r\nx\r\n", "~1\r\n$1\r\nx\r\n"},
		{"double", func(w *Writer) { w.Double(3.5) }, "$3\r\n3.5\r\n", ",3.5\r\n"},
		{"double integral", func(w *Writer) { w.Double(3) }, "$1\r\n3\r\n", ",3\r\n"},
		{"double negative", func(w *Writer) { w.Double(-0.25) }, "$5\r\n-0.25\r\n", ",-0.25\r\n"},
		{"double shortest", func(w *Writer) { w.Double(0.1) }, "$3\r\n0.1\r\n", ",0.1\r\n"},
		{"double sum", func(w *Writer) { w.Double(10.5 + 0.1) }, "$4\r\n10.6\r\n", ",10.6\r\n"},
		{"double no exponent", func(w *Writer) { w.Double(1e20) }, "$21\r\n100000000000000000000\r\n", ",100000000000000000000\r\n"},
		{"double small", func(w *Writer) { w.Double(1.5e-7) }, "$10\r\n0.00000015\r\n", ",0.00000015\r\n"},
		{"double inf", func(w *Writer) { w.Double(math.Inf(1)) }, "$3\r\ninf\r\n", ",inf\r\n"},
		{"double -inf", func(w *Writer) { w.Double(math.Inf(-1)) }, "$4\r\n-inf\r\n", ",-inf\r\n"},
		{"double nan", func(w *Writer) { w.Double(math.NaN()) }, "$3\r\nnan\r\n", ",nan\r\n"},
		{"bool true", func(w *Writer) { w.Bool(true) }, ":1\r\n", "#t\r\n"},
		{"bool false", func(w *Writer) { w.Bool(false) }, ":0\r\n", "#f\r\n"},
		{"verbatim", func(w *Writer) { w.Verbatim("txt", "Some string") }, "$11\r\nSome string\r\n", "=15\r\ntxt:Some string\r\n"},
		{"verbatim markdown", func(w *Writer) { w.Verbatim("mkd", "# a\r\n") }, "$5\r\n# a\r\n\r\n", "=9\r\nmkd:# a\r\n\r\n"},
		{"verbatim bad format", func(w *Writer) { w.Verbatim("markdown", "x") }, "$1\r\nx\r\n", "=5\r\ntxt:x\r\n"},
	}
	for _, tt := range tests {
		for _, proto := range []int{2, 3} {
			want := map[int]string{2: tt.resp2, 3: tt.resp3}[proto]
			t.Run(tt.name+"/"+map[int]string{2: "resp2", 3: "resp3"}[proto], func(t *testing.T) {
				var out bytes.Buffer
				w := NewWriter(&out)
				w.SetProtocol(proto)
				tt.write(w)
				if w.Buffered() != len(want) {
					t.Errorf("Buffered() = %d, want %d", w.Buffered(), len(want))
				}
				if out.Len() != 0 {
					t.Errorf("%d bytes sent before Flush", out.Len())
				}
				if err := w.Flush(); err != nil {
					t.Fatal(err)
				}
				if out.String() != want {
					t.Errorf("wrote %q, want %q", out.String(), want)
				}
				if w.Buffered() != 0 {
					t.Errorf("Buffered() = %d after Flush", w.Buffered())
				}
			})
		}
	}
}

func TestWriterProtocol(t *testing.T) {
	w := NewWriter(io.Discard)
	for _, step := range []struct{ set, want int }{{0, 2}, {3, 3}, {2, 2}, {3, 3}, {4, 2}} {
		if step.set != 0 {
			w.SetProtocol(step.set)
		}
		if got := w.Protocol(); got != step.want {
			t.Errorf("after SetProtocol(%d): Protocol() = %d, want %d", step.set, got, step.want)
		}
	}
}

func TestWriterDoubleRoundTrips(t *testing.T) {
	for _, f := range []float64{0, 1, -1, 0.1, 1.0 / 3, math.Pi, 1e300, -1e-300, math.MaxFloat64, math.SmallestNonzeroFloat64, 123456789.987654321} {
		var out bytes.Buffer
		w := NewWriter(&out)
		w.SetProtocol(3)
		w.Double(f)
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		text := strings.TrimSuffix(strings.TrimPrefix(out.String(), ","), "\r\n")
		if strings.ContainsAny(text, "eE") {
			t.Errorf("Double(%g) = %q, with an exponent", f, text)
		}
		if back, err := strconv.ParseFloat(text, 64); err != nil || back != f {
			t.Errorf("Double(%g) = %q, reads back as %g (%v)", f, text, back, err)
		}
	}
}

func TestWriterLargeBulk(t *testing.T) {
	for _, size := range []int{bufSize - 10, bufSize, 3*bufSize + 7} {
		var out bytes.Buffer
		w := NewWriter(&out)
		w.Simple("OK")
		big := bytes.Repeat([]byte("x"), size)
		w.Bulk(big)
		w.BulkString(string(big))
		w.Int(7)
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		body := "$" + strconv.Itoa(size) + "\r\n" + string(big) + "\r\n"
		if want := "+OK\r\n" + body + body + ":7\r\n"; out.String() != want {
			t.Errorf("size %d: wrote %d bytes, want %d", size, out.Len(), len(want))
		}
	}
}

// failWriter fails every write after the first ok bytes, counting calls.
type failWriter struct {
	ok    int
	calls int
}

var errWrite = errors.New("broken pipe")

func (f *failWriter) Write(p []byte) (int, error) {
	f.calls++
	if len(p) <= f.ok {
		f.ok -= len(p)
		return len(p), nil
	}
	n := f.ok
	f.ok = 0
	return n, errWrite
}

func TestWriterKeepsFirstError(t *testing.T) {
	fw := &failWriter{ok: 10}
	w := NewWriter(fw)
	w.Bulk(bytes.Repeat([]byte("x"), 2*bufSize)) // sent at once, fails
	if fw.calls == 0 {
		t.Fatal("a bulk larger than the buffer did not reach the connection")
	}
	calls := fw.calls
	w.Simple("OK")
	w.Int(1)
	w.Bulk(bytes.Repeat([]byte("y"), 3*bufSize))
	w.Double(1.5)
	for range 2000 {
		w.Array(3)
	}
	if err := w.Flush(); !errors.Is(err, errWrite) {
		t.Errorf("Flush: %v, want %v", err, errWrite)
	}
	if err := w.Flush(); !errors.Is(err, errWrite) {
		t.Errorf("second Flush: %v, want %v", err, errWrite)
	}
	if fw.calls != calls {
		t.Errorf("%d writes to the connection after its error", fw.calls-calls)
	}
}

func TestWriterAllocatesNothing(t *testing.T) {
	w := NewWriter(io.Discard)
	value := []byte(strings.Repeat("v", 100))
	allocs := testing.AllocsPerRun(1000, func() { writeMix(w, value) })
	if allocs != 0 {
		t.Errorf("%.2f allocations a round of replies, want 0", allocs)
	}
	w.SetProtocol(3)
	allocs = testing.AllocsPerRun(1000, func() { writeMix(w, value) })
	if allocs != 0 {
		t.Errorf("RESP3: %.2f allocations a round of replies, want 0", allocs)
	}
}

// writeMix writes one of each reply.
func writeMix(w *Writer, value []byte) {
	w.Simple("OK")
	w.Error("ERR unknown command")
	w.Int(123456)
	w.Bulk(value)
	w.BulkString("hello")
	w.Null()
	w.NullArray()
	w.Array(2)
	w.Map(1)
	w.Set(3)
	w.Double(2.75)
	w.Double(1e-300)
	w.Bool(true)
	w.Verbatim("txt", "info")
}
