package node

import (
	"math"
	"testing"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	peerv1 "github.com/elcache/elcache/proto/peer/v1"
	"github.com/elcache/elcache/storage"
)

// TestMutate checks the decisions of a MUTATE op against Redis's
// semantics for the commands built on it.
func TestMutate(t *testing.T) {
	const now = 1000
	key := []byte("k")
	val := func(v string, expire int64) storage.Entry {
		return storage.Entry{Key: key, Value: []byte(v), Version: 7, ExpireAt: expire}
	}
	at := int32(cachev1.ExpiryChange_ACTION_AT)
	persist := int32(cachev1.ExpiryChange_ACTION_PERSIST)
	keep := int32(cachev1.ExpiryChange_ACTION_KEEP)
	only := func(o cachev1.ExpiryChange_Only) int32 { return int32(o) }
	tests := []struct {
		name    string
		cur     storage.Entry
		live    bool
		m       *peerv1.Mutation
		act     mutateAction
		value   string
		expire  int64
		refused cachev1.MutateResponse_Refusal
		ok      bool
	}{
		{name: "incr missing", m: &peerv1.Mutation{Change: &peerv1.Mutation_IncrBy{IncrBy: 1}}, act: mutateStore, value: "1", ok: true},
		{name: "incr keeps ttl", cur: val("41", 5000), live: true, m: &peerv1.Mutation{Change: &peerv1.Mutation_IncrBy{IncrBy: 1}}, act: mutateStore, value: "42", expire: 5000, ok: true},
		{name: "decr negative", cur: val("1", 0), live: true, m: &peerv1.Mutation{Change: &peerv1.Mutation_IncrBy{IncrBy: -3}}, act: mutateStore, value: "-2", ok: true},
		{name: "incr not integer", cur: val("abc", 0), live: true, m: &peerv1.Mutation{Change: &peerv1.Mutation_IncrBy{IncrBy: 1}}, refused: cachev1.MutateResponse_REFUSAL_NOT_INTEGER},
		{name: "incr leading zero", cur: val("01", 0), live: true, m: &peerv1.Mutation{Change: &peerv1.Mutation_IncrBy{IncrBy: 1}}, refused: cachev1.MutateResponse_REFUSAL_NOT_INTEGER},
		{name: "incr plus sign", cur: val("+1", 0), live: true, m: &peerv1.Mutation{Change: &peerv1.Mutation_IncrBy{IncrBy: 1}}, refused: cachev1.MutateResponse_REFUSAL_NOT_INTEGER},
		{name: "incr overflow", cur: val("9223372036854775807", 0), live: true, m: &peerv1.Mutation{Change: &peerv1.Mutation_IncrBy{IncrBy: 1}}, refused: cachev1.MutateResponse_REFUSAL_OVERFLOW},
		{name: "decr underflow", cur: val("-9223372036854775808", 0), live: true, m: &peerv1.Mutation{Change: &peerv1.Mutation_IncrBy{IncrBy: -1}}, refused: cachev1.MutateResponse_REFUSAL_OVERFLOW},
		{name: "expired counts as missing", cur: val("5", 10), m: &peerv1.Mutation{Change: &peerv1.Mutation_IncrBy{IncrBy: 2}}, act: mutateStore, value: "2", ok: true},
		{name: "incrbyfloat", cur: val("10.5", 0), live: true, m: &peerv1.Mutation{Change: &peerv1.Mutation_IncrByFloat{IncrByFloat: 0.1}}, act: mutateStore, value: "10.6", ok: true},
		{name: "incrbyfloat no binary noise", cur: val("0.1", 0), live: true, m: &peerv1.Mutation{Change: &peerv1.Mutation_IncrByFloat{IncrByFloat: 0.2}}, act: mutateStore, value: "0.3", ok: true},
		{name: "incrbyfloat exponent", cur: val("5.0e3", 0), live: true, m: &peerv1.Mutation{Change: &peerv1.Mutation_IncrByFloat{IncrByFloat: 200}}, act: mutateStore, value: "5200", ok: true},
		{name: "incrbyfloat not a number", cur: val("x", 0), live: true, m: &peerv1.Mutation{Change: &peerv1.Mutation_IncrByFloat{IncrByFloat: 1}}, refused: cachev1.MutateResponse_REFUSAL_NOT_FLOAT},
		{name: "incrbyfloat overflow", cur: val("1e308", 0), live: true, m: &peerv1.Mutation{Change: &peerv1.Mutation_IncrByFloat{IncrByFloat: math.MaxFloat64}}, refused: cachev1.MutateResponse_REFUSAL_OVERFLOW},
		{name: "append", cur: val("ab", 0), live: true, m: &peerv1.Mutation{Change: &peerv1.Mutation_Append{Append: []byte("cd")}, MaxValueBytes: 10}, act: mutateStore, value: "abcd", ok: true},
		{name: "append too large", cur: val("abcdef", 0), live: true, m: &peerv1.Mutation{Change: &peerv1.Mutation_Append{Append: []byte("ghijk")}, MaxValueBytes: 10}, refused: cachev1.MutateResponse_REFUSAL_TOO_LARGE},
		{name: "setrange pads", m: &peerv1.Mutation{Change: &peerv1.Mutation_SetRange{SetRange: []byte("x")}, SetRangeOffset: 2, MaxValueBytes: 10}, act: mutateStore, value: "\x00\x00x", ok: true},
		{name: "setrange inside", cur: val("hello", 0), live: true, m: &peerv1.Mutation{Change: &peerv1.Mutation_SetRange{SetRange: []byte("J")}, MaxValueBytes: 10}, act: mutateStore, value: "Jello", ok: true},
		{name: "setrange empty creates nothing", m: &peerv1.Mutation{Change: &peerv1.Mutation_SetRange{}, SetRangeOffset: 3, MaxValueBytes: 10}},
		{name: "set nx on live", cur: val("a", 0), live: true, m: &peerv1.Mutation{Condition: int32(cachev1.MutateRequest_CONDITION_ABSENT), Change: &peerv1.Mutation_Set{Set: []byte("b")}}},
		{name: "set nx on missing", m: &peerv1.Mutation{Condition: int32(cachev1.MutateRequest_CONDITION_ABSENT), Change: &peerv1.Mutation_Set{Set: []byte("b")}}, act: mutateStore, value: "b", ok: true},
		{name: "set xx on missing", m: &peerv1.Mutation{Condition: int32(cachev1.MutateRequest_CONDITION_EXISTS), Change: &peerv1.Mutation_Set{Set: []byte("b")}}},
		{name: "set clears ttl", cur: val("a", 5000), live: true, m: &peerv1.Mutation{Change: &peerv1.Mutation_Set{Set: []byte("b")}}, act: mutateStore, value: "b", ok: true},
		{name: "set keepttl", cur: val("a", 5000), live: true, m: &peerv1.Mutation{Change: &peerv1.Mutation_Set{Set: []byte("b")}, ExpiryAction: keep}, act: mutateStore, value: "b", expire: 5000, ok: true},
		{name: "delete live", cur: val("a", 0), live: true, m: &peerv1.Mutation{Change: &peerv1.Mutation_Delete{Delete: true}}, act: mutateRemove, ok: true},
		{name: "delete missing", m: &peerv1.Mutation{Change: &peerv1.Mutation_Delete{Delete: true}}},
		{name: "expire missing", m: &peerv1.Mutation{ExpiryAction: at, ExpireAt: 5000}},
		{name: "expire", cur: val("a", 0), live: true, m: &peerv1.Mutation{ExpiryAction: at, ExpireAt: 5000}, act: mutateStore, value: "a", expire: 5000, ok: true},
		{name: "expire in the past removes", cur: val("a", 0), live: true, m: &peerv1.Mutation{ExpiryAction: at, ExpireAt: 10}, act: mutateRemove, ok: true},
		{name: "expire nx with ttl", cur: val("a", 3000), live: true, m: &peerv1.Mutation{ExpiryAction: at, ExpireAt: 5000, ExpiryOnly: only(cachev1.ExpiryChange_ONLY_NO_EXPIRY)}},
		{name: "expire xx without ttl", cur: val("a", 0), live: true, m: &peerv1.Mutation{ExpiryAction: at, ExpireAt: 5000, ExpiryOnly: only(cachev1.ExpiryChange_ONLY_HAS_EXPIRY)}},
		{name: "expire gt later", cur: val("a", 3000), live: true, m: &peerv1.Mutation{ExpiryAction: at, ExpireAt: 5000, ExpiryOnly: only(cachev1.ExpiryChange_ONLY_LATER)}, act: mutateStore, value: "a", expire: 5000, ok: true},
		{name: "expire gt no ttl is infinite", cur: val("a", 0), live: true, m: &peerv1.Mutation{ExpiryAction: at, ExpireAt: 5000, ExpiryOnly: only(cachev1.ExpiryChange_ONLY_LATER)}},
		{name: "expire lt no ttl", cur: val("a", 0), live: true, m: &peerv1.Mutation{ExpiryAction: at, ExpireAt: 5000, ExpiryOnly: only(cachev1.ExpiryChange_ONLY_EARLIER)}, act: mutateStore, value: "a", expire: 5000, ok: true},
		{name: "expire lt later", cur: val("a", 3000), live: true, m: &peerv1.Mutation{ExpiryAction: at, ExpireAt: 5000, ExpiryOnly: only(cachev1.ExpiryChange_ONLY_EARLIER)}},
		{name: "persist", cur: val("a", 3000), live: true, m: &peerv1.Mutation{ExpiryAction: persist, ExpiryOnly: only(cachev1.ExpiryChange_ONLY_HAS_EXPIRY)}, act: mutateStore, value: "a", ok: true},
		{name: "persist without ttl", cur: val("a", 0), live: true, m: &peerv1.Mutation{ExpiryAction: persist, ExpiryOnly: only(cachev1.ExpiryChange_ONLY_HAS_EXPIRY)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			value, expire, act, r := mutate(tc.cur, tc.live, tc.m, now)
			if act != tc.act || string(value) != tc.value || expire != tc.expire || r.Ok != tc.ok ||
				cachev1.MutateResponse_Refusal(r.Refused) != tc.refused || r.Existed != tc.live {
				t.Fatalf("mutate = (%q, %d, %v, ok=%v refused=%v existed=%v), want (%q, %d, %v, ok=%v refused=%v existed=%v)",
					value, expire, act, r.Ok, r.Refused, r.Existed, tc.value, tc.expire, tc.act, tc.ok, tc.refused, tc.live)
			}
			if act == mutateStore && r.Length != uint64(len(value)) {
				t.Fatalf("length %d, want %d", r.Length, len(value))
			}
		})
	}
}

// TestMutateReturnsPrevious: GETSET, GETDEL and SET GET see the value
// the key held before.
func TestMutateReturnsPrevious(t *testing.T) {
	cur := storage.Entry{Key: []byte("k"), Value: []byte("old"), Version: 3}
	_, _, act, r := mutate(cur, true, &peerv1.Mutation{Change: &peerv1.Mutation_Delete{Delete: true}, ReturnPrevious: true}, 1)
	if act != mutateRemove || string(r.Previous) != "old" {
		t.Fatalf("delete: act %v previous %q", act, r.Previous)
	}
	_, _, _, r = mutate(cur, true, &peerv1.Mutation{Change: &peerv1.Mutation_Set{Set: []byte("new")}}, 1)
	if r.Previous != nil {
		t.Fatalf("previous %q returned without ReturnPrevious", r.Previous)
	}
}
