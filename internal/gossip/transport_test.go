package gossip

import (
	"errors"
	"io"
	"log"
	"net"
	"testing"
	"time"
)

func TestMembershipTransport(t *testing.T) {
	blocked := "127.0.0.1:1"
	tr, err := newTransport("127.0.0.1", 0, func(a string) bool { return a != blocked }, log.New(io.Discard, "", 0))
	if err != nil {
		t.Fatal(err)
	}
	defer tr.abandon()
	if _, err := tr.WriteTo([]byte("x"), blocked); err != nil {
		t.Errorf("write to a blocked address: %v, want a silent drop", err)
	}
	if c, err := tr.DialTimeout(blocked, time.Second); !errors.Is(err, errBlocked) {
		if c != nil {
			c.Close()
		}
		t.Errorf("dial a blocked address: %v, want %v", err, errBlocked)
	}
	// An allowed dial is tracked and closed by Shutdown.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := tr.DialTimeout(ln.Addr().String(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	tr.abandon()
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("read on a connection after Shutdown succeeded")
	}
	if _, err := tr.WriteTo([]byte("x"), ln.Addr().String()); !errors.Is(err, errTransportClosed) {
		t.Errorf("write after Shutdown: %v", err)
	}
	if _, err := tr.DialTimeout(ln.Addr().String(), time.Second); err == nil {
		t.Error("dial after Shutdown succeeded")
	}
}
