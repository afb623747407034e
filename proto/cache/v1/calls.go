package cachev1

import (
	"context"
	"errors"
)

// A pipelined Call carries one of the unary requests; RunCall runs it as
// that RPC. The node's Pipeline handler runs calls on its own Cache
// server, and the Go client runs them as unary RPCs when it cannot
// pipeline: both go through this one switch. Written by hand; protoc does
// not generate this file.

// ErrEmptyCall: a Call carries no request.
var ErrEmptyCall = errors.New("cachev1: call has no request")

// CallHandler serves the unary RPCs a Call can carry. A CacheServer is
// one; ClientHandler makes a CacheClient one.
type CallHandler interface {
	Get(context.Context, *GetRequest) (*GetResponse, error)
	Put(context.Context, *PutRequest) (*PutResponse, error)
	Delete(context.Context, *DeleteRequest) (*DeleteResponse, error)
	CompareAndSet(context.Context, *CompareAndSetRequest) (*CompareAndSetResponse, error)
	MultiGet(context.Context, *MultiGetRequest) (*MultiGetResponse, error)
	MultiPut(context.Context, *MultiPutRequest) (*MultiPutResponse, error)
}

// RunCall runs call's request on h as its unary RPC and returns the
// response in a CallResult (without the call's id), or the RPC's error,
// or ErrEmptyCall.
func RunCall(ctx context.Context, h CallHandler, call *Call) (*CallResult, error) {
	out := &CallResult{}
	var err error
	switch r := call.GetRequest().(type) {
	case *Call_Get:
		var resp *GetResponse
		if resp, err = h.Get(ctx, r.Get); err == nil {
			out.Response = &CallResult_Get{Get: resp}
		}
	case *Call_Put:
		var resp *PutResponse
		if resp, err = h.Put(ctx, r.Put); err == nil {
			out.Response = &CallResult_Put{Put: resp}
		}
	case *Call_Delete:
		var resp *DeleteResponse
		if resp, err = h.Delete(ctx, r.Delete); err == nil {
			out.Response = &CallResult_Delete{Delete: resp}
		}
	case *Call_CompareAndSet:
		var resp *CompareAndSetResponse
		if resp, err = h.CompareAndSet(ctx, r.CompareAndSet); err == nil {
			out.Response = &CallResult_CompareAndSet{CompareAndSet: resp}
		}
	case *Call_MultiGet:
		var resp *MultiGetResponse
		if resp, err = h.MultiGet(ctx, r.MultiGet); err == nil {
			out.Response = &CallResult_MultiGet{MultiGet: resp}
		}
	case *Call_MultiPut:
		var resp *MultiPutResponse
		if resp, err = h.MultiPut(ctx, r.MultiPut); err == nil {
			out.Response = &CallResult_MultiPut{MultiPut: resp}
		}
	default:
		err = ErrEmptyCall
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// CallRequest returns the request call carries, or nil.
func CallRequest(call *Call) any {
	switch r := call.GetRequest().(type) {
	case *Call_Get:
		return r.Get
	case *Call_Put:
		return r.Put
	case *Call_Delete:
		return r.Delete
	case *Call_CompareAndSet:
		return r.CompareAndSet
	case *Call_MultiGet:
		return r.MultiGet
	case *Call_MultiPut:
		return r.MultiPut
	}
	return nil
}

// ClientHandler runs calls on c, one unary RPC each.
func ClientHandler(c CacheClient) CallHandler { return clientHandler{c} }

type clientHandler struct{ c CacheClient }

func (h clientHandler) Get(ctx context.Context, r *GetRequest) (*GetResponse, error) {
	return h.c.Get(ctx, r)
}

func (h clientHandler) Put(ctx context.Context, r *PutRequest) (*PutResponse, error) {
	return h.c.Put(ctx, r)
}

func (h clientHandler) Delete(ctx context.Context, r *DeleteRequest) (*DeleteResponse, error) {
	return h.c.Delete(ctx, r)
}

func (h clientHandler) CompareAndSet(ctx context.Context, r *CompareAndSetRequest) (*CompareAndSetResponse, error) {
	return h.c.CompareAndSet(ctx, r)
}

func (h clientHandler) MultiGet(ctx context.Context, r *MultiGetRequest) (*MultiGetResponse, error) {
	return h.c.MultiGet(ctx, r)
}

func (h clientHandler) MultiPut(ctx context.Context, r *MultiPutRequest) (*MultiPutResponse, error) {
	return h.c.MultiPut(ctx, r)
}
