// Package pipeline serves the Cache.Pipeline stream (DESIGN.md
// "Pipelining"): one bidirectional stream that carries many calls, each
// with its own id, run concurrently, their results sent back in batches.
// What a call means (its unary RPC, authorization, metrics, timeouts) is
// the Handler's: the node implements it. The package promises the rest:
//
//   - Ordering: results go back in completion order, not in the order the
//     calls came; each carries its call's id, and every call received gets
//     exactly one result before the stream ends cleanly.
//   - Flow control: at most 4,096 calls of a stream run at once. Past that
//     the server stops reading the stream, and gRPC flow control pushes
//     back on the client until a call finishes.
//   - Batching: while one message of results is being sent, the results
//     completed meanwhile gather into the next, split where a message would
//     pass 512 results or about 1 MiB of values. Batches grow with load and
//     add no delay when the server is idle.
//   - What runs inline: every call is first offered to Handler.Refuse and
//     then to Handler.Inline on the goroutine that received it, with the
//     context Handler.InlineContext made for the stream; the results of one received
//     message answered there go back together in one message. The other
//     calls go to Handler.Run on a pool of workers that grows while every
//     worker is busy.
//   - Ending: when the client closes its side, the calls in flight are
//     answered, then the stream ends with no error. A failed send ends it
//     with the send's error; a receive error or the stream's context ending
//     ends it with that error as a gRPC status.
package pipeline
