package raftnet

import (
	"context"
	"fmt"
	"sync"
	"time"

	peerv1 "github.com/elcache/elcache/proto/peer/v1"
	"github.com/hashicorp/raft"
)

// The append pipeline: one bidi stream per (group, peer) with at most
// pipelineMaxInFlight appends unanswered; an idle group's empty append
// folds into the coalesced Heartbeats call.

// AppendEntriesPipeline implements raft.Transport: one bidi stream to the
// peer on its raft connection.
func (t *Transport) AppendEntriesPipeline(_ raft.ServerID, target raft.ServerAddress) (raft.AppendPipeline, error) {
	peer := string(target)
	if t.ctx.Err() != nil {
		return nil, errTransportClosed
	}
	if err := t.rn.allowed(peer); err != nil {
		return nil, err
	}
	cc, err := t.rn.Conn(peer, ClassRaft)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(t.ctx)
	// Opening a stream waits for a connection; bound it like an RPC.
	opening := time.AfterFunc(t.rn.cfg.RPCTimeout, cancel)
	stream, err := peerv1.NewRaftClient(cc).AppendEntriesPipeline(ctx)
	if !opening.Stop() && err == nil {
		err = fmt.Errorf("opening took over %s", t.rn.cfg.RPCTimeout)
	}
	if err != nil {
		cancel()
		return nil, fmt.Errorf("raftnet: raft pipeline to %s (group %d): %w", peer, t.group, err)
	}
	p := &appendPipeline{
		t:        t,
		peer:     peer,
		stream:   stream,
		ctx:      ctx,
		cancel:   cancel,
		slots:    make(chan struct{}, pipelineMaxInFlight),
		doneCh:   make(chan raft.AppendFuture, pipelineMaxInFlight),
		failed:   make(chan struct{}),
		closeCh:  make(chan struct{}),
		recvDone: make(chan struct{}),
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		cancel()
		return nil, errTransportClosed
	}
	t.pipelines[p] = struct{}{}
	t.mu.Unlock()
	go p.receive()
	return p, nil
}

// appendPipeline is one (group, peer) append stream. Sends and responses
// pair up in order; at most pipelineMaxInFlight sends wait for a response.
// An append too large for one message goes out in several parts (see
// splitAppend), each its own send; its future completes with the first
// failed part or the last one. The first error fails every waiting future
// and ends the stream; raft then closes the pipeline and falls back to
// unary appends.
type appendPipeline struct {
	t      *Transport
	peer   string
	stream peerv1.Raft_AppendEntriesPipelineClient
	ctx    context.Context // the stream's; cancel ends it
	cancel context.CancelFunc

	slots    chan struct{} // one token per send in flight
	doneCh   chan raft.AppendFuture
	closeCh  chan struct{} // closed by Close
	recvDone chan struct{} // closed when receive returns

	closeOnce sync.Once
	sendMu    sync.Mutex // keeps queue order equal to send order

	mu      sync.Mutex
	queue   []*pipelineSend // sent, not yet answered, oldest first
	err     error           // why the pipeline failed; set once
	failed  chan struct{}   // closed when err is set
	acked   pipelineAck     // the latest append the follower accepted
	folding bool            // a folded append waits for its answer
}

// pipelineAck is what a follower accepted on a pipeline: an append in
// term, ending at index end, with the leader's commit index commit.
type pipelineAck struct {
	term, end, commit uint64
}

// pipelineSend is one message on the stream: a whole append or a part.
type pipelineSend struct {
	f     *pipelineFuture
	req   *raft.AppendEntriesRequest
	sent  time.Time
	last  bool // the future's last part
	timer *time.Timer
}

var _ raft.AppendPipeline = (*appendPipeline)(nil)

// AppendEntries implements raft.AppendPipeline. It blocks while
// pipelineMaxInFlight sends are unanswered.
func (p *appendPipeline) AppendEntries(args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) (raft.AppendFuture, error) {
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	f := &pipelineFuture{start: time.Now(), args: args, resp: resp, done: make(chan struct{})}
	lease := p.t.leaseHeld()
	p.t.stats.pipelined.Add(1)
	p.t.noteTerm(args.Term)
	if p.fold(f, lease) {
		return f, nil
	}
	parts := p.t.splitAppend(args)
	for i, part := range parts {
		if err := p.t.rn.allowed(p.peer); err != nil {
			p.abort(err)
			return nil, err
		}
		select {
		case p.slots <- struct{}{}:
		case <-p.failed:
			return nil, p.failure()
		}
		ps := &pipelineSend{f: f, req: part, sent: time.Now(), last: i == len(parts)-1}
		ps.timer = time.AfterFunc(p.t.rn.cfg.RPCTimeout, func() {
			p.abort(fmt.Errorf("raftnet: raft pipeline to %s (group %d): no response in %s", p.peer, p.t.group, p.t.rn.cfg.RPCTimeout))
		})
		p.mu.Lock()
		if p.err != nil {
			err := p.err
			p.mu.Unlock()
			ps.timer.Stop()
			<-p.slots
			return nil, err
		}
		p.queue = append(p.queue, ps)
		p.mu.Unlock()
		if err := p.stream.Send(p.t.wireAppend(part, f.start, lease)); err != nil {
			// The receiver fails f with the stream's error.
			p.abort(fmt.Errorf("raftnet: raft pipeline to %s (group %d): send: %w", p.peer, p.t.group, err))
			return nil, p.failure()
		}
	}
	return f, nil
}

// fold sends f's append in the peer's next Heartbeats call instead of on
// the stream, if it repeats what the follower last accepted here: no
// entries, the same term, previous entry and commit index. Raft sends one
// such append every CommitTimeout to an idle follower; folded, it costs
// the follower a raft round but no message of its own (heartbeat.go).
// It still goes to raft's append handler, not the heartbeat one, so the
// follower checks its log and renews its lease proofs as it would. Its
// future is delivered when the call answers, possibly after futures of
// later appends: raft's pipeline decoder takes an empty append's answer
// for a contact and a leadership confirmation, in any order. One folded
// append waits at a time; another goes on the stream.
func (p *appendPipeline) fold(f *pipelineFuture, lease bool) bool {
	args := f.args
	if len(args.Entries) > 0 {
		return false
	}
	p.mu.Lock()
	a := p.acked
	ok := p.err == nil && !p.folding && a.term != 0 &&
		args.Term == a.term && args.PrevLogEntry == a.end && args.LeaderCommitIndex == a.commit
	if ok {
		p.folding = true
	}
	p.mu.Unlock()
	if !ok {
		return false
	}
	p.t.stats.folded.Add(1)
	wire := p.t.wireAppend(args, f.start, lease)
	go func() {
		ctx, cancel := context.WithTimeout(p.ctx, p.t.rn.cfg.RPCTimeout)
		out, err := p.t.rn.heartbeat(ctx, p.peer, wire)
		cancel()
		if err == nil {
			appendResponseFromProto(out, f.resp)
			p.t.recordAck(p.peer, args, f.resp, f.start)
			if f.resp.Success {
				p.noteAccepted(args)
			}
		}
		p.mu.Lock()
		p.folding = false
		p.mu.Unlock()
		f.finish(err)
		select {
		case p.doneCh <- f:
		case <-p.closeCh:
		}
	}()
	return true
}

// noteAccepted records that the follower accepted args on this pipeline.
func (p *appendPipeline) noteAccepted(args *raft.AppendEntriesRequest) {
	end := args.PrevLogEntry
	if n := len(args.Entries); n > 0 {
		end = args.Entries[n-1].Index
	}
	p.mu.Lock()
	switch a := p.acked; {
	case args.Term > a.term:
		p.acked = pipelineAck{term: args.Term, end: end, commit: args.LeaderCommitIndex}
	case args.Term == a.term && end >= a.end:
		p.acked = pipelineAck{term: args.Term, end: end, commit: max(args.LeaderCommitIndex, a.commit)}
	}
	p.mu.Unlock()
}

// Consumer implements raft.AppendPipeline: futures in send order.
func (p *appendPipeline) Consumer() <-chan raft.AppendFuture { return p.doneCh }

// Close implements raft.AppendPipeline. It ends the stream, fails futures
// still waiting and waits for the receiver. It is idempotent.
func (p *appendPipeline) Close() error {
	p.closeOnce.Do(func() {
		p.abort(fmt.Errorf("raftnet: raft pipeline to %s (group %d): %w", p.peer, p.t.group, raft.ErrPipelineShutdown))
		close(p.closeCh)
		<-p.recvDone
		p.failQueued()
		p.t.mu.Lock()
		delete(p.t.pipelines, p)
		p.t.mu.Unlock()
	})
	return nil
}

// abort records the pipeline's first error and ends the stream.
func (p *appendPipeline) abort(err error) {
	p.mu.Lock()
	if p.err == nil {
		p.err = err
		close(p.failed)
	}
	p.mu.Unlock()
	p.cancel()
}

func (p *appendPipeline) failure() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// receive pairs responses with sends in order and hands completed futures
// to raft. Only receive, and failQueued after it, touch futures.
func (p *appendPipeline) receive() {
	defer close(p.recvDone)
	for {
		msg, err := p.stream.Recv()
		if err != nil {
			p.abort(fmt.Errorf("raftnet: raft pipeline to %s (group %d): %w", p.peer, p.t.group, err))
			p.failQueued()
			return
		}
		p.mu.Lock()
		if len(p.queue) == 0 {
			p.mu.Unlock()
			p.abort(fmt.Errorf("raftnet: raft pipeline to %s (group %d): response without a request", p.peer, p.t.group))
			p.failQueued()
			return
		}
		ps := p.queue[0]
		p.queue[0] = nil
		p.queue = p.queue[1:]
		p.mu.Unlock()
		ps.timer.Stop()
		<-p.slots
		if ps.f.finished {
			continue // an earlier part failed and answered the future
		}
		var resp raft.AppendEntriesResponse
		appendResponseFromProto(msg, &resp)
		p.t.recordAck(p.peer, ps.req, &resp, ps.sent)
		if !ps.last && resp.Success {
			continue
		}
		if ps.last && resp.Success {
			p.noteAccepted(ps.f.args)
		}
		*ps.f.resp = resp
		ps.f.finish(nil)
		select {
		case p.doneCh <- ps.f:
		case <-p.closeCh:
			return
		}
	}
}

// failQueued fails every unanswered future with the pipeline's error and
// delivers them in order while the pipeline is open. Call it only after
// abort: nothing joins the queue after that.
func (p *appendPipeline) failQueued() {
	p.mu.Lock()
	queue, err := p.queue, p.err
	p.queue = nil
	p.mu.Unlock()
	for _, ps := range queue {
		ps.timer.Stop()
		if ps.f.finished {
			continue
		}
		ps.f.finish(err)
		select {
		case p.doneCh <- ps.f:
		case <-p.closeCh:
		}
	}
}

// pipelineFuture implements raft.AppendFuture. A failed future's Response
// is left as it was (zero from raft): Success false makes raft's pipeline
// decoder stop, as with net_transport.go.
type pipelineFuture struct {
	start time.Time
	args  *raft.AppendEntriesRequest
	resp  *raft.AppendEntriesResponse

	finished bool // set by the pipeline's receiver before done closes
	done     chan struct{}
	err      error
}

func (f *pipelineFuture) finish(err error) {
	f.finished = true
	f.err = err
	close(f.done)
}

// Error implements raft.Future.
func (f *pipelineFuture) Error() error {
	<-f.done
	return f.err
}

// Start implements raft.AppendFuture: when the append was sent.
func (f *pipelineFuture) Start() time.Time { return f.start }

// Request implements raft.AppendFuture.
func (f *pipelineFuture) Request() *raft.AppendEntriesRequest { return f.args }

// Response implements raft.AppendFuture.
func (f *pipelineFuture) Response() *raft.AppendEntriesResponse { return f.resp }
