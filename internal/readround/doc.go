// Package readround runs an elcache node's leadership rounds: the quorum
// round of a linearizable read, shared by every partition the node leads
// (DESIGN.md "Reads").
//
// A leader of term T that hears "still at term T" from a quorum of its
// group's voters, asked after a read arrived, knows that no later leader
// had been elected when the read arrived: electing one takes votes from a
// quorum, every voter moves to the later term before it votes (raft
// persists the term and then answers), and any two quorums share a voter.
// So every write acknowledged before the read is at or below the commit
// index the leader read when it had committed in T.
//
// A round asks each peer once (one CallFunc call, Peer.ConfirmTerms in
// the node) for all the partitions whose reads joined it, so the cost of
// a round is one small call per peer, whatever the number of partitions
// and reads. raft's VerifyLeader made one round per partition through its
// heartbeat goroutines: 0.33x the throughput of a read served at once. A
// partition is settled as soon as a quorum answered, so a slow or frozen
// peer delays no read while the others answer, and a round ends when
// every partition in it is settled. One round is in flight at a time; a
// read joins the next one, which takes in every read that joined
// meanwhile. Calls in flight to one peer are capped, so a peer that does
// not answer is left out of further rounds until its calls time out.
//
// The package knows nothing of the node, raft or the wire: the node
// passes the call to a peer in (New) and says, for each read, the
// partition, the term it leads at and the voters to ask (Rounds.Confirm).
package readround
