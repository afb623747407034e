package resp

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
	"testing/iotest"
)

// FuzzReader feeds arbitrary bytes to a Reader with small limits and reads
// commands until an error. The Reader must not panic or loop, must keep to
// its limits, must end with io.EOF, io.ErrUnexpectedEOF or a
// ProtocolError, and must read the same whether the bytes come at once or
// one at a time.
func FuzzReader(f *testing.F) {
	for _, seed := range []string{
		"*1\r\n$4\r\nPING\r\n",
		"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
		"*0\r\n*-1\r\nPING\r\n\r\n",
		"SET \"a\\x41 b\" 'it\\'s' c\r\nGET k\n",
		"ECHO \"unbalanced\r\n",
		"*1\r\n$-1\r\n",
		"*1\r\n$4\r\nPINGxx",
		"*9\r\n",
		"*1\r\n$65\r\n",
		"*1\r\n:1\r\n",
		"*99999999999999999999\r\n",
		"*1\r\n$4\r\nPI",
		"a b c d e f g h i\r\n",
	} {
		f.Add([]byte(seed))
	}
	lim := Limits{MaxArgs: 8, MaxBulk: 64, MaxInline: 64}
	f.Fuzz(func(t *testing.T, data []byte) {
		whole, wholeErr := readChecked(t, bytes.NewReader(data), lim, len(data))
		oneByte, oneByteErr := readChecked(t, iotest.OneByteReader(bytes.NewReader(data)), lim, len(data))
		if !reflect.DeepEqual(whole, oneByte) {
			t.Errorf("read whole: %q; one byte at a time: %q", whole, oneByte)
		}
		if errText(wholeErr) != errText(oneByteErr) {
			t.Errorf("read whole: %v; one byte at a time: %v", wholeErr, oneByteErr)
		}
	})
}

// readChecked reads commands from src until an error, checking each
// against lim; size is how many bytes src holds.
func readChecked(t *testing.T, src io.Reader, lim Limits, size int) ([][]string, error) {
	r := NewReader(src, lim)
	var cmds [][]string
	for {
		args, err := r.ReadCommand()
		if err != nil {
			var pe *ProtocolError
			if err != io.EOF && err != io.ErrUnexpectedEOF && !errors.As(err, &pe) {
				t.Errorf("ReadCommand: %v", err)
			}
			return cmds, err
		}
		// The shortest command, "a\n", takes two bytes.
		if len(cmds) > size/2 {
			t.Fatalf("%d commands from %d bytes", len(cmds)+1, size)
		}
		if len(args) == 0 || len(args) > lim.MaxArgs {
			t.Fatalf("a command of %d arguments", len(args))
		}
		cmd := make([]string, len(args))
		for i, a := range args {
			if len(a) > max(lim.MaxBulk, lim.MaxInline) {
				t.Fatalf("an argument of %d bytes", len(a))
			}
			cmd[i] = string(a)
		}
		cmds = append(cmds, cmd)
	}
}

func errText(err error) string { return err.Error() }
