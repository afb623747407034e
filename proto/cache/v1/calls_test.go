package cachev1

import (
	"context"
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"
)

// echo answers each RPC with a response naming the request's key, or
// fails when the key is "fail".
type echo struct{ fail error }

func (e echo) err(key string) error {
	if key == "fail" {
		return e.fail
	}
	return nil
}

func (e echo) Get(_ context.Context, r *GetRequest) (*GetResponse, error) {
	return &GetResponse{Found: true, Entry: &Entry{Key: r.Key}}, e.err(string(r.Key))
}
func (e echo) Put(_ context.Context, r *PutRequest) (*PutResponse, error) {
	return &PutResponse{Version: uint64(len(r.Key))}, e.err(string(r.Key))
}
func (e echo) Delete(_ context.Context, r *DeleteRequest) (*DeleteResponse, error) {
	return &DeleteResponse{Existed: true}, e.err(string(r.Key))
}
func (e echo) CompareAndSet(_ context.Context, r *CompareAndSetRequest) (*CompareAndSetResponse, error) {
	return &CompareAndSetResponse{Swapped: true}, e.err(string(r.Key))
}
func (e echo) MultiGet(_ context.Context, r *MultiGetRequest) (*MultiGetResponse, error) {
	return &MultiGetResponse{Results: make([]*GetResponse, len(r.Keys))}, nil
}
func (e echo) MultiPut(_ context.Context, r *MultiPutRequest) (*MultiPutResponse, error) {
	return &MultiPutResponse{Results: make([]*PutResponse, len(r.Entries))}, nil
}

func TestRunCall(t *testing.T) {
	h := echo{fail: errors.New("boom")}
	tests := []struct {
		call *Call
		want *CallResult
	}{
		{&Call{Request: &Call_Get{Get: &GetRequest{Key: []byte("k")}}},
			&CallResult{Response: &CallResult_Get{Get: &GetResponse{Found: true, Entry: &Entry{Key: []byte("k")}}}}},
		{&Call{Request: &Call_Put{Put: &PutRequest{Key: []byte("abc")}}},
			&CallResult{Response: &CallResult_Put{Put: &PutResponse{Version: 3}}}},
		{&Call{Request: &Call_Delete{Delete: &DeleteRequest{Key: []byte("k")}}},
			&CallResult{Response: &CallResult_Delete{Delete: &DeleteResponse{Existed: true}}}},
		{&Call{Request: &Call_CompareAndSet{CompareAndSet: &CompareAndSetRequest{Key: []byte("k")}}},
			&CallResult{Response: &CallResult_CompareAndSet{CompareAndSet: &CompareAndSetResponse{Swapped: true}}}},
		{&Call{Request: &Call_MultiGet{MultiGet: &MultiGetRequest{Keys: [][]byte{[]byte("a"), []byte("b")}}}},
			&CallResult{Response: &CallResult_MultiGet{MultiGet: &MultiGetResponse{Results: make([]*GetResponse, 2)}}}},
		{&Call{Request: &Call_MultiPut{MultiPut: &MultiPutRequest{Entries: make([]*KeyValue, 1)}}},
			&CallResult{Response: &CallResult_MultiPut{MultiPut: &MultiPutResponse{Results: make([]*PutResponse, 1)}}}},
	}
	for _, tt := range tests {
		got, err := RunCall(context.Background(), h, tt.call)
		if err != nil || !proto.Equal(got, tt.want) {
			t.Errorf("RunCall(%v) = %v, %v; want %v", tt.call, got, err, tt.want)
		}
		if req := CallRequest(tt.call); req == nil {
			t.Errorf("CallRequest(%v) = nil", tt.call)
		}
	}
	if _, err := RunCall(context.Background(), h, &Call{}); !errors.Is(err, ErrEmptyCall) {
		t.Errorf("empty call: err %v, want ErrEmptyCall", err)
	}
	if CallRequest(&Call{}) != nil {
		t.Error("CallRequest of an empty call is not nil")
	}
	failing := &Call{Request: &Call_Put{Put: &PutRequest{Key: []byte("fail")}}}
	if res, err := RunCall(context.Background(), h, failing); err != h.fail || res != nil {
		t.Errorf("failing call = %v, %v; want nil, %v", res, err, h.fail)
	}
}
