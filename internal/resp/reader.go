package resp

import (
	"errors"
	"io"
	"math"
)

// Limits bound what a client may send; zero fields take the defaults.
type Limits struct {
	MaxArgs   int // arguments of one command, the name included (default 1<<16)
	MaxBulk   int // bytes of one bulk-string argument (default 64 MiB)
	MaxInline int // bytes of one inline command line (default 64 KiB)
}

// DefaultLimits returns the limits a zero Limits stands for.
func DefaultLimits() Limits {
	return Limits{MaxArgs: 1 << 16, MaxBulk: 64 << 20, MaxInline: 64 << 10}
}

// withDefaults returns l with every field that is zero or negative set to
// its default.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxArgs <= 0 {
		l.MaxArgs = d.MaxArgs
	}
	if l.MaxBulk <= 0 {
		l.MaxBulk = d.MaxBulk
	}
	if l.MaxInline <= 0 {
		l.MaxInline = d.MaxInline
	}
	return l
}

// ProtocolError is a malformed or over-limit request. The listener replies
// "-ERR Protocol error: <Msg>" and closes the connection, as Redis does.
// Its Error text is that reply (without the '-'), so, unlike the package's
// other errors, it does not start with "resp:".
type ProtocolError struct {
	// Msg says what was wrong, in Redis's words where Redis has some
	// ("invalid bulk length").
	Msg string
}

// Error returns "ERR Protocol error: " followed by Msg.
func (e *ProtocolError) Error() string { return "ERR Protocol error: " + e.Msg }

// The ProtocolError messages, as Redis words them.
const (
	msgBigCount      = "too big mbulk count string"
	msgBigBulkCount  = "too big bulk count string"
	msgMultibulkLen  = "invalid multibulk length"
	msgBulkLen       = "invalid bulk length"
	msgBulkEnd       = "bulk string not followed by CRLF"
	msgBigInline     = "too big inline request"
	msgUnbalanced    = "unbalanced quotes in request"
	msgInlineTooMany = "too many arguments in inline request"
)

const (
	// bufSize is a Reader's buffer between large commands.
	bufSize = 16 << 10
	// keepBelow: a buffer that grew beyond it is given up once the
	// command that needed it is served; so are argument lists whose
	// backing arrays would weigh about as much.
	keepBelow = 1 << 20
	keepArgs  = keepBelow / 64
	// maxHeader bounds a "*<n>\r\n" or "$<n>\r\n" line, CRLF included.
	maxHeader = 64
	// maxEmptyReads is how many reads returning nothing, and no error, in
	// a row make io.ErrNoProgress.
	maxEmptyReads = 100
)

var errBadCount = errors.New("resp: the connection's reader returned an impossible count")

// phase is where a Reader is in the command it is reading.
type phase uint8

const (
	phaseFirst      phase = iota // before the first byte of a command
	phaseInline                  // in an inline line
	phaseCount                   // at the "*<n>" line
	phaseBulkHeader              // at a "$<len>" line
	phaseBulkData                // in a bulk string's bytes
)

// span is an argument's bytes, as offsets from the command's first byte.
type span struct{ from, to int }

// Reader reads commands from a client connection. It is not safe for
// concurrent use.
type Reader struct {
	rd  io.Reader
	lim Limits

	// buf[pos:end] is read and not yet consumed; the command being read
	// starts at buf[start].
	buf             []byte
	start, pos, end int
	// rerr is a read error that came with data, returned at the next read.
	rerr error
	// err, once set, is the ProtocolError every later call returns.
	err error

	// The command being read.
	phase phase
	scan  int    // inline: buf[start:scan] holds no '\n'
	left  int    // multibulk: bulk strings still to come
	bulk  int    // phaseBulkData: the length of the bulk string
	spans []span // the arguments so far
	args  [][]byte
}

// NewReader returns a Reader of commands from r, held to lim (zero fields
// take the defaults). Its buffer starts at 16 KiB and grows only as a
// command needs.
func NewReader(r io.Reader, lim Limits) *Reader {
	return &Reader{rd: r, lim: lim.withDefaults(), buf: make([]byte, bufSize)}
}

// Buffered reports the bytes already read from the connection and not yet
// consumed: the listener keeps executing pipelined commands while
// Buffered() > 0 and flushes replies only when it would block. They may be
// only the start of a command, in which case ReadCommand waits for the
// rest.
func (r *Reader) Buffered() int { return r.end - r.pos }

// ReadCommand returns the next command's arguments (args[0] is the name
// as sent). The slices stay valid only until the next ReadCommand. An
// empty inline line (just "\r\n" or "\n") is skipped, as Redis does; so is
// a multibulk of zero or fewer arguments. Returns io.EOF at a clean end
// between commands, io.ErrUnexpectedEOF if the connection ends inside a
// command, a *ProtocolError for bad input, or the read error. After a read
// error other than io.EOF (a deadline, say) the next call goes on with the
// command where it stopped.
func (r *Reader) ReadCommand() (args [][]byte, err error) {
	if r.err != nil {
		return nil, r.err
	}
	for {
		if r.phase == phaseFirst {
			r.begin()
		}
		done, err := r.parse()
		if err != nil {
			r.err = err
			return nil, err
		}
		if !done {
			if err := r.fill(r.want()); err != nil {
				if err == io.EOF && r.phase != phaseFirst {
					err = io.ErrUnexpectedEOF
				}
				return nil, err
			}
			continue
		}
		r.phase = phaseFirst
		if len(r.spans) == 0 {
			r.start = r.pos // an empty command
			continue
		}
		args := r.command()
		r.start = r.pos
		return args, nil
	}
}

// begin readies the Reader for a new command at r.pos, giving up the
// buffers a large command left behind.
func (r *Reader) begin() {
	r.spans = r.spans[:0]
	if cap(r.spans) > keepArgs {
		r.spans = nil
	}
	if cap(r.args) > keepArgs {
		r.args = nil
	}
	if r.pos == r.end {
		r.start, r.pos, r.end = 0, 0, 0
	}
	if len(r.buf) <= keepBelow {
		return
	}
	pending := r.end - r.pos
	size := bufSize
	for size < pending {
		size *= 2
	}
	if size >= len(r.buf) {
		return
	}
	buf := make([]byte, size)
	copy(buf, r.buf[r.pos:r.end])
	r.buf, r.start, r.pos, r.end = buf, 0, 0, pending
}

// command returns the arguments of the command that starts at r.start,
// each capped so that appending to one cannot overwrite the next.
func (r *Reader) command() [][]byte {
	base := r.buf[r.start:]
	args := r.args[:0]
	for _, s := range r.spans {
		args = append(args, base[s.from:s.to:s.to])
	}
	r.args = args
	return args
}

// parse goes on with the command as far as the buffered bytes allow. It
// reports whether the command is complete (with no arguments if it was
// empty) or the ProtocolError that ends the connection.
func (r *Reader) parse() (done bool, err error) {
	for {
		switch r.phase {
		case phaseFirst:
			if r.pos == r.end {
				return false, nil
			}
			if r.buf[r.pos] == '*' {
				r.phase = phaseCount
			} else {
				r.phase, r.scan = phaseInline, r.pos
			}
		case phaseInline:
			return r.inline()
		case phaseCount:
			num, ok, err := r.header(msgBigCount)
			if !ok {
				return false, err
			}
			n, ok := parseInt(num)
			if !ok || n > int64(r.lim.MaxArgs) {
				return false, &ProtocolError{Msg: msgMultibulkLen}
			}
			if n <= 0 {
				return true, nil
			}
			r.left, r.phase = int(n), phaseBulkHeader
		case phaseBulkHeader:
			if r.pos == r.end {
				return false, nil
			}
			if c := r.buf[r.pos]; c != '$' {
				return false, &ProtocolError{Msg: "expected '$', got '" + string([]byte{c}) + "'"}
			}
			num, ok, err := r.header(msgBigBulkCount)
			if !ok {
				return false, err
			}
			n, ok := parseInt(num)
			if !ok || n < 0 || n > int64(r.lim.MaxBulk) {
				return false, &ProtocolError{Msg: msgBulkLen}
			}
			r.bulk, r.phase = int(n), phaseBulkData
		case phaseBulkData:
			if avail := r.end - r.pos; avail < 2 || avail-2 < r.bulk {
				return false, nil
			}
			to := r.pos + r.bulk
			if r.buf[to] != '\r' || r.buf[to+1] != '\n' {
				return false, &ProtocolError{Msg: msgBulkEnd}
			}
			r.spans = append(r.spans, span{r.pos - r.start, to - r.start})
			r.pos = to + 2
			r.left--
			if r.left == 0 {
				return true, nil
			}
			r.phase = phaseBulkHeader
		}
	}
}

// header returns the number of the "*<n>" or "$<n>" line at r.pos and
// moves past the line, or ok is false if the line has not all arrived. A
// line that does not end in CRLF has a nil number, which parseInt refuses.
// No '\n' in the first maxHeader bytes is the ProtocolError tooBig.
func (r *Reader) header(tooBig string) (num []byte, ok bool, err error) {
	// Headers are a few bytes: a plain loop beats bytes.IndexByte's call.
	end := min(r.end, r.pos+maxHeader)
	i := r.pos
	for i < end && r.buf[i] != '\n' {
		i++
	}
	if i == end {
		if end-r.pos == maxHeader {
			return nil, false, &ProtocolError{Msg: tooBig}
		}
		return nil, false, nil
	}
	line := r.buf[r.pos:i]
	r.pos = i + 1
	if len(line) < 2 || line[len(line)-1] != '\r' {
		return nil, true, nil
	}
	return line[1 : len(line)-1], true, nil
}

// want is how many bytes from r.start the command needs before parse can
// go on, or 0 when that is not known.
func (r *Reader) want() int {
	if r.phase != phaseBulkData {
		return 0
	}
	have := r.pos - r.start
	if r.bulk > math.MaxInt-2-have {
		return math.MaxInt
	}
	return have + r.bulk + 2
}

// fill reads more bytes into the buffer, keeping the command being read
// (buf[start:end]): it moves that command to the front, grows the buffer
// if the command fills it (to want bytes if want is known and less than
// double), and reads once. A read error that comes with data is kept for
// the next fill.
func (r *Reader) fill(want int) error {
	if r.rerr != nil {
		err := r.rerr
		r.rerr = nil
		return err
	}
	if r.start > 0 {
		n := copy(r.buf, r.buf[r.start:r.end])
		r.pos -= r.start
		r.scan -= r.start
		r.start, r.end = 0, n
	}
	if r.end == len(r.buf) {
		size := 2 * len(r.buf)
		if want > len(r.buf) && want < size {
			size = want
		}
		buf := make([]byte, size)
		copy(buf, r.buf[:r.end])
		r.buf = buf
	}
	for range maxEmptyReads {
		n, err := r.rd.Read(r.buf[r.end:])
		if n < 0 || n > len(r.buf)-r.end {
			return errBadCount
		}
		r.end += n
		if n > 0 {
			r.rerr = err
			return nil
		}
		if err != nil {
			return err
		}
	}
	return io.ErrNoProgress
}

// parseInt parses a decimal number as Redis's string2ll does: an optional
// minus sign, then "0" or digits without a leading zero; nothing else, not
// even a plus sign or a blank. ok is false for anything else, overflow
// included.
func parseInt(b []byte) (n int64, ok bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || (b[0] == '0' && (len(b) > 1 || neg)) {
		return 0, false
	}
	var u uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		if u > (math.MaxUint64-9)/10 {
			return 0, false
		}
		u = u*10 + uint64(c-'0')
	}
	switch {
	case !neg && u <= math.MaxInt64:
		return int64(u), true
	case neg && u < 1<<63:
		return -int64(u), true
	case neg && u == 1<<63:
		return math.MinInt64, true
	}
	return 0, false
}
