package resp

import "bytes"

// inline goes on with an inline command: it waits for the end of the line
// and splits it into arguments.
func (r *Reader) inline() (done bool, err error) {
	i := bytes.IndexByte(r.buf[r.scan:r.end], '\n')
	if i < 0 {
		r.scan = r.end
		// MaxInline bytes and a '\r' may still end well.
		if r.end-r.start-1 > r.lim.MaxInline {
			return false, &ProtocolError{Msg: msgBigInline}
		}
		return false, nil
	}
	nl := r.scan + i
	line := r.buf[r.start:nl]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if len(line) > r.lim.MaxInline {
		return false, &ProtocolError{Msg: msgBigInline}
	}
	r.pos = nl + 1
	r.spans, err = splitInline(line, r.spans, r.lim.MaxArgs)
	return true, err
}

// splitInline appends to spans the arguments of an inline line, as
// offsets into line, the way Redis's sdssplitargs splits it (but for NUL,
// an ordinary byte here, where sdssplitargs reads a C string). It unquotes
// in place: each argument's bytes are rewritten where they stand, never
// past the bytes still to read, since no escape is shorter than what it
// stands for.
func splitInline(line []byte, spans []span, maxArgs int) ([]span, error) {
	i, w := 0, 0 // read and write positions in line
	for {
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		if i == len(line) {
			return spans, nil
		}
		if len(spans) == maxArgs {
			return spans, &ProtocolError{Msg: msgInlineTooMany}
		}
		from := w
		var quote byte // the quote the argument is in, if any
	arg:
		for ; i < len(line); i++ {
			c := line[i]
			switch {
			case quote == 0 && isBlank(c):
				break arg
			case quote == 0 && (c == '"' || c == '\''):
				quote = c
				continue
			case quote == 0:
			case c == quote:
				if i+1 < len(line) && !isSpace(line[i+1]) {
					return spans, &ProtocolError{Msg: msgUnbalanced}
				}
				quote = 0
				i++
				break arg
			case quote == '"' && c == '\\' && i+3 < len(line) && line[i+1] == 'x' &&
				isHex(line[i+2]) && isHex(line[i+3]):
				c = unhex(line[i+2])<<4 | unhex(line[i+3])
				i += 3
			case quote == '"' && c == '\\' && i+1 < len(line):
				i++
				c = unescape(line[i])
			case quote == '\'' && c == '\\' && i+1 < len(line) && line[i+1] == '\'':
				i++
				c = '\''
			}
			line[w] = c
			w++
		}
		if quote != 0 {
			return spans, &ProtocolError{Msg: msgUnbalanced}
		}
		spans = append(spans, span{from, w})
	}
}

// isSpace reports whether C's isspace holds for c: the blanks that
// separate arguments.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// isBlank reports whether c ends an unquoted argument; sdssplitargs stops
// at these but not at '\v' or '\f', which it skips only between arguments.
func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// unhex returns the value of the hex digit c.
func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// unescape returns the byte that a backslash and c stand for in double
// quotes: the C escapes sdssplitargs knows, or c itself.
func unescape(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	case 'b':
		return '\b'
	case 'a':
		return '\a'
	}
	return c
}
