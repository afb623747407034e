package resp

import (
	"io"
	"strings"
	"testing"
)

// BenchmarkReadCommand reads a pipelined stream of SETs (32-byte values)
// and GETs, as multibulks and as inline commands (some quoted); an op is
// one command.
func BenchmarkReadCommand(b *testing.B) {
	streams := []struct {
		name string
		data []byte
	}{
		{"multibulk", getSetStream(1000)},
		{"inline", []byte(strings.Repeat("SET key:000123 \"vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv\"\r\nGET key:000123\r\n", 500))},
	}
	for _, stream := range streams {
		b.Run(stream.name, func(b *testing.B) {
			r := NewReader(&repeatReader{data: stream.data}, Limits{})
			b.SetBytes(int64(len(stream.data) / 1000))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.ReadCommand(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkWriter writes the replies of a SET and a GET (+OK and a 32-byte
// bulk), and the rest of the reply types now and then; an op is one
// command's reply.
func BenchmarkWriter(b *testing.B) {
	for _, proto := range []int{2, 3} {
		b.Run(map[int]string{2: "resp2", 3: "resp3"}[proto], func(b *testing.B) {
			w := NewWriter(io.Discard)
			w.SetProtocol(proto)
			value := []byte(strings.Repeat("v", 32))
			mix := []byte(strings.Repeat("v", 100))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				switch i++; {
				case i%64 == 0:
					writeMix(w, mix)
				case i%2 == 0:
					w.Simple("OK")
				default:
					w.Bulk(value)
				}
			}
			if err := w.Flush(); err != nil {
				b.Fatal(err)
			}
		})
	}
}
