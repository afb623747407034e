package resp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

// readAll reads commands from r until an error, which it returns with the
// commands as strings.
func readAll(r *Reader) ([][]string, error) {
	var cmds [][]string
	for {
		args, err := r.ReadCommand()
		if err != nil {
			return cmds, err
		}
		cmd := make([]string, len(args))
		for i, a := range args {
			cmd[i] = string(a)
		}
		cmds = append(cmds, cmd)
	}
}

// sources are the ways a test's input reaches the Reader: all at once,
// a byte at a time, half of what is asked, and with io.EOF on the last
// data.
var sources = []struct {
	name string
	wrap func(io.Reader) io.Reader
}{
	{"whole", func(r io.Reader) io.Reader { return r }},
	{"one-byte", iotest.OneByteReader},
	{"half", iotest.HalfReader},
	{"data-err", iotest.DataErrReader},
}

// cmds builds the want list of a table case: commands separated by '|',
// arguments by ','.
func cmds(s string) [][]string {
	if s == "" {
		return nil
	}
	var out [][]string
	for c := range strings.SplitSeq(s, "|") {
		out = append(out, strings.Split(c, ","))
	}
	return out
}

func TestReadCommand(t *testing.T) {
	small := Limits{MaxArgs: 3, MaxBulk: 4, MaxInline: 8}
	tests := []struct {
		name string
		in   string
		lim  Limits
		want [][]string
		err  string // "" for io.EOF, "unexpected" for io.ErrUnexpectedEOF, else the ProtocolError's Msg
	}{
		// Multibulk.
		{name: "ping", in: "*1\r\n$4\r\nPING\r\n", want: cmds("PING")},
		{name: "set", in: "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n", want: cmds("SET,k,value")},
		{name: "empty bulk", in: "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n", want: [][]string{{"SET", "k", ""}}},
		{name: "binary bulk", in: "*2\r\n$4\r\nECHO\r\n$6\r\na\r\n\x00*$\r\n", want: [][]string{{"ECHO", "a\r\n\x00*$"}}},
		{name: "zero and negative counts", in: "*0\r\n*-1\r\n*-7\r\n*1\r\n$4\r\nPING\r\n*0\r\n", want: cmds("PING")},
		{name: "pipelined", in: "*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\na\r\n*2\r\n$3\r\nGET\r\n$1\r\nb\r\n", want: cmds("PING|GET,a|GET,b")},
		{name: "at the limits", in: "*3\r\n$4\r\nabcd\r\n$0\r\n\r\n$4\r\nwxyz\r\n", lim: small, want: [][]string{{"abcd", "", "wxyz"}}},

		// Inline.
		{name: "inline crlf", in: "PING\r\n", want: cmds("PING")},
		{name: "inline lf", in: "PING\n", want: cmds("PING")},
		{name: "inline blanks", in: "  SET\t k   v \t\r\n", want: cmds("SET,k,v")},
		{name: "inline cr inside", in: "A\rB\r\n", want: cmds("A,B")},
		{name: "empty lines", in: "\r\n\n   \r\n\t\nPING\r\n\r\n", want: cmds("PING")},
		{name: "vertical tab", in: "\v\fA\vB C\r\n", want: [][]string{{"A\vB", "C"}}},
		{name: "nul is a byte", in: "ECHO a\x00b c\r\nPING\r\n", want: cmds("ECHO,a\x00b,c|PING")},
		{name: "nul in quotes", in: "ECHO \"a\x00b\" '\x00'\r\n", want: cmds("ECHO,a\x00b,\x00")},
		{name: "quotes", in: `SET "a b" 'c d'` + "\r\n", want: cmds("SET,a b,c d")},
		{name: "empty quotes", in: `SET k ""` + " ''\r\n", want: [][]string{{"SET", "k", "", ""}}},
		{name: "double quote escapes", in: `ECHO "\x41\x7a\xfF\n\r\t\b\a\\\"\q\'"` + "\n", want: [][]string{{"ECHO", "Az\xff\n\r\t\b\a\\\"q'"}}},
		{name: "short hex escapes", in: `ECHO "\x4" "\xZZ" "\x"` + "\n", want: [][]string{{"ECHO", "x4", "xZZ", "x"}}},
		{name: "single quote escapes", in: `ECHO 'it\'s' 'a\b' 'c\\d'` + "\n", want: [][]string{{"ECHO", "it's", `a\b`, `c\\d`}}},
		{name: "backslash before closing single", in: `ECHO 'c\\'` + "\n", err: msgUnbalanced},
		{name: "quote inside a word", in: `ECHO a"b c" d'e f'` + "\n", want: cmds("ECHO,ab c,de f")},
		{name: "quote then vertical tab", in: "ECHO \"a\"\vb\n", want: cmds("ECHO,a,b")},
		{name: "star mid line", in: "ECHO *1\r\n", want: cmds("ECHO,*1")},
		{name: "dollar line is inline", in: "$4\r\n", want: cmds("$4")},
		{name: "inline then multibulk", in: "PING\r\n*1\r\n$4\r\nPING\r\nECHO x\n", want: cmds("PING|PING|ECHO,x")},
		{name: "inline at the limits", in: "12345678\r\nA B C\r\n", lim: small, want: cmds("12345678|A,B,C")},

		// Ends.
		{name: "nothing", in: ""},
		{name: "only empty commands", in: "*0\r\n\r\n"},
		{name: "in a count", in: "*1", err: "unexpected"},
		{name: "after a count", in: "*1\r\n", err: "unexpected"},
		{name: "in a bulk length", in: "*1\r\n$4", err: "unexpected"},
		{name: "in a bulk", in: "*1\r\n$4\r\nPI", err: "unexpected"},
		{name: "before a bulk's crlf", in: "*1\r\n$4\r\nPING\r", err: "unexpected"},
		{name: "in an inline line", in: "PING", err: "unexpected"},
		{name: "blanks without a newline", in: "PING\r\n  ", want: cmds("PING"), err: "unexpected"},

		// Protocol errors.
		{name: "count not a number", in: "*x\r\n", err: msgMultibulkLen},
		{name: "count empty", in: "*\r\n", err: msgMultibulkLen},
		{name: "count plus", in: "*+1\r\n", err: msgMultibulkLen},
		{name: "count leading zero", in: "*01\r\n", err: msgMultibulkLen},
		{name: "count minus zero", in: "*-0\r\n", err: msgMultibulkLen},
		{name: "count minus alone", in: "*-\r\n", err: msgMultibulkLen},
		{name: "count blank", in: "*1 \r\n", err: msgMultibulkLen},
		{name: "count lone lf", in: "*1\n$4\r\nPING\r\n", err: msgMultibulkLen},
		{name: "count overflow", in: "*99999999999999999999\r\n", err: msgMultibulkLen},
		{name: "count over the limit", in: "*4\r\n", lim: small, err: msgMultibulkLen},
		{name: "count too long", in: "*" + strings.Repeat("1", 70) + "\r\n", err: msgBigCount},
		{name: "count too long, no end", in: "*" + strings.Repeat("1", 70), err: msgBigCount},
		{name: "not a bulk", in: "*1\r\n+PING\r\n", err: "expected '$', got '+'"},
		{name: "not a bulk after one", in: "*2\r\n$4\r\nECHO\r\n:1\r\n", err: "expected '$', got ':'"},
		{name: "bulk negative", in: "*1\r\n$-1\r\n", err: msgBulkLen},
		{name: "bulk not a number", in: "*1\r\n$x\r\n", err: msgBulkLen},
		{name: "bulk leading zero", in: "*1\r\n$04\r\nPING\r\n", err: msgBulkLen},
		{name: "bulk lone lf", in: "*1\r\n$4\nPING\r\n", err: msgBulkLen},
		{name: "bulk overflow", in: "*1\r\n$9223372036854775808\r\n", err: msgBulkLen},
		{name: "bulk over the limit", in: "*1\r\n$5\r\nabcde\r\n", lim: small, err: msgBulkLen},
		{name: "bulk length too long", in: "*1\r\n$" + strings.Repeat("1", 70) + "\r\n", err: msgBigBulkCount},
		{name: "bulk without crlf", in: "*1\r\n$4\r\nPINGxx*1\r\n$4\r\nPING\r\n", err: msgBulkEnd},
		{name: "bulk with lf only", in: "*1\r\n$4\r\nPING\n\n", err: msgBulkEnd},
		{name: "bulk too short", in: "*1\r\n$4\r\nPIN\r\n\r\n", err: msgBulkEnd},
		{name: "error after commands", in: "PING\r\n*1\r\n$1\r\nab\r\n", want: cmds("PING"), err: msgBulkEnd},
		{name: "inline too long", in: "123456789\r\n", lim: small, err: msgBigInline},
		{name: "inline too long, no end", in: "1234567890", lim: small, err: msgBigInline},
		{name: "inline at the limit, no end", in: "123456789", lim: small, err: "unexpected"},
		{name: "inline too many", in: "A B C D\r\n", lim: small, err: msgInlineTooMany},
		{name: "unclosed double", in: `ECHO "abc` + "\r\n", err: msgUnbalanced},
		{name: "unclosed single", in: `ECHO 'abc` + "\r\n", err: msgUnbalanced},
		{name: "escaped closing quote", in: `ECHO "abc\"` + "\r\n", err: msgUnbalanced},
		{name: "trailing backslash", in: `ECHO "abc\` + "\r\n", err: msgUnbalanced},
		{name: "text after double", in: `ECHO "a"b` + "\r\n", err: msgUnbalanced},
		{name: "text after single", in: `ECHO 'a'b` + "\r\n", err: msgUnbalanced},
	}
	for _, tt := range tests {
		for _, src := range sources {
			t.Run(tt.name+"/"+src.name, func(t *testing.T) {
				r := NewReader(src.wrap(strings.NewReader(tt.in)), tt.lim)
				got, err := readAll(r)
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("commands = %q, want %q", got, tt.want)
				}
				checkErr(t, err, tt.err)
				// The error stays.
				if _, again := r.ReadCommand(); again != err && !errors.Is(again, err) {
					t.Errorf("next ReadCommand: %v, want %v again", again, err)
				}
			})
		}
	}
}

// checkErr fails t unless err is what want names: "" io.EOF, "unexpected"
// io.ErrUnexpectedEOF, anything else a ProtocolError of that Msg.
func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	var pe *ProtocolError
	switch {
	case want == "":
		if err != io.EOF {
			t.Errorf("err = %v, want io.EOF", err)
		}
	case want == "unexpected":
		if err != io.ErrUnexpectedEOF {
			t.Errorf("err = %v, want io.ErrUnexpectedEOF", err)
		}
	case !errors.As(err, &pe):
		t.Errorf("err = %v, want a ProtocolError %q", err, want)
	case pe.Msg != want:
		t.Errorf("ProtocolError %q, want %q", pe.Msg, want)
	case err.Error() != "ERR Protocol error: "+want:
		t.Errorf("Error() = %q", err.Error())
	}
}

func TestDefaultLimits(t *testing.T) {
	want := Limits{MaxArgs: 1 << 16, MaxBulk: 64 << 20, MaxInline: 64 << 10}
	if got := DefaultLimits(); got != want {
		t.Errorf("DefaultLimits() = %+v, want %+v", got, want)
	}
	if got := (Limits{MaxBulk: 7, MaxInline: -1}).withDefaults(); got != (Limits{MaxArgs: 1 << 16, MaxBulk: 7, MaxInline: 64 << 10}) {
		t.Errorf("withDefaults = %+v", got)
	}
	// The default inline limit holds: a line of 64 KiB passes, one more byte does not.
	line := strings.Repeat("a", 64<<10)
	r := NewReader(strings.NewReader(line+"\r\n"+line+"a\r\n"), Limits{})
	if args, err := r.ReadCommand(); err != nil || len(args) != 1 || len(args[0]) != len(line) {
		t.Fatalf("ReadCommand of 64 KiB: %d args, %v", len(args), err)
	}
	_, err := r.ReadCommand()
	checkErr(t, err, msgBigInline)
}

// countingReader counts the reads of its reader.
type countingReader struct {
	r     io.Reader
	reads int
}

func (c *countingReader) Read(p []byte) (int, error) {
	c.reads++
	return c.r.Read(p)
}

func TestPipelineNeedsOneRead(t *testing.T) {
	const n = 50
	var in bytes.Buffer
	for i := range n {
		if i%2 == 0 {
			fmt.Fprintf(&in, "*2\r\n$3\r\nGET\r\n$%d\r\nkey%d\r\n", len(fmt.Sprint(i))+3, i)
		} else {
			fmt.Fprintf(&in, "GET key%d\r\n", i)
		}
	}
	total := in.Len()
	src := &countingReader{r: &in}
	r := NewReader(src, Limits{})
	for i := range n {
		args, err := r.ReadCommand()
		if err != nil {
			t.Fatalf("command %d: %v", i, err)
		}
		if want := fmt.Sprintf("key%d", i); string(args[1]) != want {
			t.Fatalf("command %d: key %q, want %q", i, args[1], want)
		}
		if src.reads != 1 {
			t.Fatalf("command %d: %d reads, want 1", i, src.reads)
		}
		if i < n-1 && r.Buffered() == 0 {
			t.Fatalf("command %d: Buffered() = 0 with commands left", i)
		}
		if i == 0 && r.Buffered() >= total {
			t.Fatalf("Buffered() = %d after a command, of %d", r.Buffered(), total)
		}
	}
	if r.Buffered() != 0 {
		t.Errorf("Buffered() = %d at the end", r.Buffered())
	}
}

// scriptReader returns its steps in turn, one a Read: data, or an error.
type scriptReader struct{ steps []any }

func (s *scriptReader) Read(p []byte) (int, error) {
	if len(s.steps) == 0 {
		return 0, io.EOF
	}
	step := s.steps[0]
	s.steps = s.steps[1:]
	if err, ok := step.(error); ok {
		return 0, err
	}
	return copy(p, step.(string)), nil
}

func TestResumeAfterReadError(t *testing.T) {
	timeout := errors.New("i/o timeout")
	src := &scriptReader{steps: []any{"*2\r\n$4\r\nECHO\r\n$5\r\nhel", timeout, "lo\r\nPI", timeout, "NG\r\n"}}
	r := NewReader(src, Limits{})
	var got [][]string
	for {
		args, err := r.ReadCommand()
		if err == io.EOF {
			break
		}
		if err == timeout {
			continue
		}
		if err != nil {
			t.Fatalf("ReadCommand: %v", err)
		}
		got = append(got, []string{})
		for _, a := range args {
			got[len(got)-1] = append(got[len(got)-1], string(a))
		}
	}
	if want := cmds("ECHO,hello|PING"); !reflect.DeepEqual(got, want) {
		t.Errorf("commands = %q, want %q", got, want)
	}
}

func TestNoProgress(t *testing.T) {
	src := &scriptReader{steps: []any{"*1\r\n"}}
	for range 2 * maxEmptyReads {
		src.steps = append(src.steps, "")
	}
	if _, err := NewReader(src, Limits{}).ReadCommand(); err != io.ErrNoProgress {
		t.Errorf("err = %v, want io.ErrNoProgress", err)
	}
}

func TestArgsAreCapped(t *testing.T) {
	for _, in := range []string{"*2\r\n$1\r\na\r\n$1\r\nb\r\n", "a b\r\n"} {
		r := NewReader(strings.NewReader(in), Limits{})
		args, err := r.ReadCommand()
		if err != nil {
			t.Fatal(err)
		}
		if first := append(args[0], 'X'); string(first) != "aX" || string(args[1]) != "b" {
			t.Errorf("%q: appending to args[0] changed args[1] to %q", in, args[1])
		}
	}
}

// repeatReader returns data over and over.
type repeatReader struct {
	data []byte
	off  int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := copy(p, r.data[r.off:])
	r.off = (r.off + n) % len(r.data)
	return n, nil
}

// getSetStream is a pipelined stream of n SETs and GETs, alternating, and
// the number of commands in it.
func getSetStream(n int) []byte {
	var b bytes.Buffer
	value := strings.Repeat("v", 32)
	for i := range n / 2 {
		key := fmt.Sprintf("key:%06d", i)
		fmt.Fprintf(&b, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", len(key), key, len(value), value)
		fmt.Fprintf(&b, "*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n", len(key), key)
	}
	return b.Bytes()
}

func TestSteadyStateAllocatesNothing(t *testing.T) {
	for _, stream := range [][]byte{getSetStream(1000), []byte(`SET "key 1" 'value'` + "\r\nGET k\r\n")} {
		r := NewReader(&repeatReader{data: stream}, Limits{})
		for range 1000 { // warm up: the argument lists reach their size
			if _, err := r.ReadCommand(); err != nil {
				t.Fatal(err)
			}
		}
		allocs := testing.AllocsPerRun(10000, func() {
			if _, err := r.ReadCommand(); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%.2f allocations a command, want 0", allocs)
		}
	}
}

// stallReader returns data and then errStall forever, as a client that
// announced more than it sends.
type stallReader struct{ data []byte }

var errStall = errors.New("stalled")

func (s *stallReader) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		return 0, errStall
	}
	n := copy(p, s.data)
	s.data = s.data[n:]
	return n, nil
}

func TestAnnouncedBulkIsNotAllocated(t *testing.T) {
	const announced = 60_000_000
	head := fmt.Sprintf("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n", announced)
	for _, sent := range []int{0, 100, 100_000, 3_000_000} {
		t.Run(fmt.Sprint(sent), func(t *testing.T) {
			src := &stallReader{data: append([]byte(head), bytes.Repeat([]byte("x"), sent)...)}
			r := NewReader(src, Limits{MaxBulk: 100_000_000})
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for {
				_, err := r.ReadCommand()
				if err == errStall {
					break
				}
				if err != nil {
					t.Fatalf("ReadCommand: %v", err)
				}
			}
			runtime.ReadMemStats(&after)
			arrived := len(head) + sent
			// The buffer at most doubles what arrived, each growth
			// allocating once: under 4x in all, plus the first buffer.
			if limit := uint64(4*arrived + 2*bufSize + 64<<10); after.TotalAlloc-before.TotalAlloc > limit {
				t.Errorf("allocated %d bytes for %d that arrived (limit %d)", after.TotalAlloc-before.TotalAlloc, arrived, limit)
			}
			if len(r.buf) > max(bufSize, 2*arrived) {
				t.Errorf("buffer of %d bytes for %d that arrived", len(r.buf), arrived)
			}
		})
	}
}

func TestLargeCommandBuffersAreDropped(t *testing.T) {
	const big = 3 << 20
	var in bytes.Buffer
	fmt.Fprintf(&in, "*2\r\n$3\r\nSET\r\n$%d\r\n%s\r\n", big, strings.Repeat("v", big))
	in.WriteString("*" + fmt.Sprint(keepArgs+10) + "\r\n" + strings.Repeat("$1\r\nx\r\n", keepArgs+10))
	in.WriteString("PING\r\n")
	r := NewReader(iotest.HalfReader(&in), Limits{MaxBulk: big})

	args, err := r.ReadCommand()
	if err != nil || len(args[1]) != big {
		t.Fatalf("big SET: %v", err)
	}
	// Grown as the bytes came, to no more than the command needs.
	if len(r.buf) < big || len(r.buf) > big+64 {
		t.Errorf("buffer of %d bytes for a command of %d", len(r.buf), big)
	}
	if args, err = r.ReadCommand(); err != nil || len(args) != keepArgs+10 {
		t.Fatalf("many args: %d, %v", len(args), err)
	}
	if len(r.buf) > keepBelow {
		t.Errorf("buffer of %d bytes kept after the big command", len(r.buf))
	}
	if args, err = r.ReadCommand(); err != nil || string(args[0]) != "PING" {
		t.Fatalf("PING: %q, %v", args, err)
	}
	if cap(r.args) > keepArgs || cap(r.spans) > keepArgs {
		t.Errorf("after PING: room for %d args and %d spans kept", cap(r.args), cap(r.spans))
	}
}

// quoteInline quotes arg for an inline command, as a client may: bare when
// it can be, else in single quotes when it can be (no line end, no
// backslash last, which would escape the closing quote), else in double
// quotes with escapes.
func quoteInline(arg []byte, rnd *rand.Rand) string {
	bare, single := len(arg) > 0, true
	for _, c := range arg {
		if c <= ' ' || c >= 0x7f || c == '"' || c == '\'' || c == '*' {
			bare = false
		}
		if c == '\n' || c == '\r' {
			single = false
		}
	}
	if len(arg) > 0 && arg[len(arg)-1] == '\\' {
		single = false
	}
	switch {
	case bare && rnd.IntN(2) == 0:
		return string(arg)
	case single && rnd.IntN(2) == 0:
		return "'" + strings.ReplaceAll(string(arg), "'", `\'`) + "'"
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range arg {
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\t' && rnd.IntN(2) == 0:
			b.WriteString(`\t`)
		case c < ' ' || c >= 0x7f:
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// randomArgs returns 1 to 8 arguments of random bytes, often awkward ones.
func randomArgs(rnd *rand.Rand) [][]byte {
	const alphabet = "ab \t\r\n\"'\\x0*$\x00\xff"
	args := make([][]byte, 1+rnd.IntN(8))
	for i := range args {
		arg := make([]byte, rnd.IntN(40))
		for j := range arg {
			if rnd.IntN(2) == 0 {
				arg[j] = alphabet[rnd.IntN(len(alphabet))]
			} else {
				arg[j] = byte(rnd.IntN(256))
			}
		}
		args[i] = arg
	}
	return args
}

// chunkReader returns its data in chunks of random sizes.
type chunkReader struct {
	data []byte
	rnd  *rand.Rand
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), 1+c.rnd.IntN(64))], c.data)
	c.data = c.data[n:]
	return n, nil
}

func TestRoundTrip(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		var sent [][][]byte
		var stream bytes.Buffer
		w := NewWriter(&stream)
		for range 1 + rnd.IntN(20) {
			args := randomArgs(rnd)
			sent = append(sent, args)
			if rnd.IntN(3) == 0 {
				// Inline: quoted, separated by random blanks.
				for i, a := range args {
					if i > 0 {
						stream.WriteString([]string{" ", "\t", "  \t "}[rnd.IntN(3)])
					}
					stream.WriteString(quoteInline(a, rnd))
				}
				stream.WriteString([]string{"\r\n", "\n"}[rnd.IntN(2)])
				continue
			}
			w.Array(len(args))
			for _, a := range args {
				w.Bulk(a)
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
		}
		r := NewReader(&chunkReader{data: stream.Bytes(), rnd: rnd}, Limits{})
		for i, want := range sent {
			got, err := r.ReadCommand()
			if err != nil {
				t.Fatalf("round %d, command %d: %v", round, i, err)
			}
			if len(got) != len(want) {
				t.Fatalf("round %d, command %d: %q, want %q", round, i, got, want)
			}
			for j := range got {
				if !bytes.Equal(got[j], want[j]) {
					t.Fatalf("round %d, command %d, arg %d: %q, want %q", round, i, j, got[j], want[j])
				}
			}
		}
		if _, err := r.ReadCommand(); err != io.EOF {
			t.Fatalf("round %d: after the commands %v, want io.EOF", round, err)
		}
	}
}

func TestParseInt(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"7", 7, true}, {"-1", -1, true}, {"1234567890", 1234567890, true},
		{"9223372036854775807", 1<<63 - 1, true}, {"-9223372036854775808", -1 << 63, true},
		{"9223372036854775808", 0, false}, {"-9223372036854775809", 0, false},
		{"18446744073709551616", 0, false}, {"99999999999999999999999", 0, false},
		{"", 0, false}, {"-", 0, false}, {"+1", 0, false}, {"01", 0, false}, {"-0", 0, false},
		{"00", 0, false}, {"1a", 0, false}, {" 1", 0, false}, {"1 ", 0, false}, {"--1", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseInt([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseInt(%q) = %d, %v, want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// liarReader claims to have read more than it was given room for.
type liarReader struct{}

func (liarReader) Read(p []byte) (int, error) { return len(p) + 1, nil }

func TestImpossibleReadCount(t *testing.T) {
	if _, err := NewReader(liarReader{}, Limits{}).ReadCommand(); err != errBadCount {
		t.Errorf("err = %v, want %v", err, errBadCount)
	}
}

func TestLargestBulkLimit(t *testing.T) {
	// A bulk as long as an int can say, allowed by the limit: the Reader
	// waits for it without overflowing or allocating it.
	in := "*1\r\n$9223372036854775807\r\nabc"
	r := NewReader(strings.NewReader(in), Limits{MaxBulk: math.MaxInt})
	if _, err := r.ReadCommand(); err != io.ErrUnexpectedEOF {
		t.Errorf("err = %v, want io.ErrUnexpectedEOF", err)
	}
	if len(r.buf) != bufSize {
		t.Errorf("buffer of %d bytes", len(r.buf))
	}
}
