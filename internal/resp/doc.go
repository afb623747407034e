// Package resp reads and writes the Redis wire protocol, RESP2 and RESP3,
// for elcache's Redis-protocol listener. It knows nothing of commands or of
// the rest of elcache: a Reader turns a client's bytes into commands (each
// a list of arguments), a Writer turns replies into bytes.
//
// # Reading
//
// Reader accepts what a Redis server accepts from a client:
//
//   - Multibulk commands, "*<n>\r\n" followed by n bulk strings
//     "$<len>\r\n<bytes>\r\n". A count of zero or less is an empty command,
//     skipped. Counts and lengths are decimal as Redis writes them: an
//     optional minus sign, no plus sign, no leading zeros.
//   - Inline commands, any line that does not start with '*', split into
//     arguments as redis-cli and Redis's sdssplitargs split them: blanks
//     separate arguments; double quotes allow the escapes \n \r \t \b \a
//     \xHH and a backslash before any other character stands for that
//     character; single quotes allow only \'; a closing quote must be
//     followed by a blank or the end of the line. A line ends at '\n' (a
//     '\r' before it is dropped). An empty or blank line is skipped. A NUL
//     byte is an ordinary byte (Redis, which reads the line as a C string,
//     waits for a '\n' after it that it never sees).
//
// Every malformed or over-limit request is a *ProtocolError, whose message
// is the one Redis sends for the same input where Redis has one (checked
// against redis-server 7.0). Two differences, both on input Redis refuses
// too: a "*<n>" or "$<n>" line must end in CRLF within 64 bytes (Redis
// waits for up to 64 KiB and then says "too big mbulk count string" or
// "too big bulk count string", as the Reader does at 64 bytes), and a bulk
// string must be followed by CRLF (Redis skips two bytes unread). After a
// ProtocolError the Reader returns it again on every call: the listener
// replies and closes the connection, as Redis does.
//
// Memory follows what the client really sent, not what it announced: the
// Reader starts with a 16 KiB buffer and grows it (at most doubling) only
// as the bytes of a command arrive, so a client announcing a 60 MB bulk
// string and sending nothing costs nothing more. A command is returned
// without copying, its arguments pointing into the buffer; once a command
// that needed more than 1 MiB has been served, the buffer goes back to its
// small size. Between commands nothing is allocated.
//
// # Writing
//
// Writer writes replies into a 16 KiB buffer that Flush sends. It speaks
// RESP2 until SetProtocol(3) (after HELLO 3); the RESP3 types (map, set,
// double, boolean, verbatim string, null) have the RESP2 spelling Redis
// uses for each when the client speaks RESP2. Its methods return nothing:
// the first write error is kept, later writes do nothing, and Flush
// returns it.
//
// Neither Reader nor Writer is safe for concurrent use; a connection has
// one of each.
package resp
