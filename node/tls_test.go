package node_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/elcache/elcache/node"
	"github.com/elcache/elcache/node/nodetest"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// testPKI is a CA with one certificate for the nodes (127.0.0.1) and one
// for a client, as PEM files in a temp dir.
type testPKI struct {
	caFile, nodeCert, nodeKey, clientCert, clientKey string
	pool                                             *x509.CertPool
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "elcache test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, name string, usage []x509.ExtKeyUsage) (string, string) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: usage,
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, _ := x509.MarshalECPrivateKey(key)
		return write(name+".crt", "CERTIFICATE", der), write(name+".key", "EC PRIVATE KEY", keyDER)
	}
	p := testPKI{caFile: write("ca.crt", "CERTIFICATE", caDER), pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.nodeCert, p.nodeKey = issue(2, "node", []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth})
	p.clientCert, p.clientKey = issue(3, "client", []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth})
	return p
}

// dialTLS connects with the CA and, if withCert, the client certificate.
func (p testPKI) dial(t *testing.T, addr string, withCert bool) cachev1.CacheClient {
	t.Helper()
	cfg := &tls.Config{RootCAs: p.pool, MinVersion: tls.VersionTLS12}
	if withCert {
		kp, err := tls.LoadX509KeyPair(p.clientCert, p.clientKey)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{kp}
	}
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cachev1.NewCacheClient(cc)
}

// TestTLS: a node with TLS refuses plaintext and serves TLS clients that
// trust its CA.
func TestTLS(t *testing.T) {
	pki := newTestPKI(t)
	n := nodetest.Start(t, func(c *node.Config) {
		c.TLS = node.TLSFiles{Cert: pki.nodeCert, Key: pki.nodeKey, CA: pki.caFile}
	})
	ctx := opCtx(t)
	if _, err := pki.dial(t, n.Addr(), false).Put(ctx, &cachev1.PutRequest{Key: []byte("k"), Value: []byte("v")}); err != nil {
		t.Fatalf("put over TLS: %v", err)
	}
	plain, err := grpc.NewClient(n.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := cachev1.NewCacheClient(plain).Get(short, &cachev1.GetRequest{Key: []byte("k")}); err == nil {
		t.Error("a plaintext client was served by a TLS node")
	}
	for _, bad := range []node.TLSFiles{{Cert: pki.nodeCert, Key: pki.nodeKey}, {Cert: pki.nodeCert, CA: pki.caFile}} {
		cfg := nodetest.Config(t)
		cfg.TLS = bad
		if err := cfg.Validate(); err == nil {
			t.Errorf("TLS files %+v accepted", bad)
		}
	}
}

// TestMutualTLSCluster: three nodes with mutual TLS form a cluster (peers
// authenticate with their certificates), forward writes, and refuse a
// client without a certificate.
func TestMutualTLSCluster(t *testing.T) {
	pki := newTestPKI(t)
	c := nodetest.StartCluster(t, 3, func(_ int, cfg *node.Config) {
		cfg.TLS = node.TLSFiles{Cert: pki.nodeCert, Key: pki.nodeKey, CA: pki.caFile, RequireClientCert: true}
	})
	ctx := opCtx(t)
	for i := range 12 {
		key := []byte(fmt.Sprintf("mtls-%d", i))
		if _, err := pki.dial(t, c.Nodes[i%3].Addr(), true).Put(ctx, &cachev1.PutRequest{Key: key, Value: key}); err != nil {
			t.Fatalf("put %s through n%d: %v", key, i%3, err)
		}
		r, err := pki.dial(t, c.Nodes[(i+1)%3].Addr(), true).Get(ctx, &cachev1.GetRequest{Key: key})
		if err != nil || string(r.Entry.GetValue()) != string(key) {
			t.Fatalf("get %s through n%d: %v, %v", key, (i+1)%3, r, err)
		}
	}
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := pki.dial(t, c.Nodes[0].Addr(), false).Get(short, &cachev1.GetRequest{Key: []byte("mtls-0")}); err == nil {
		t.Error("a client without a certificate was served with mutual TLS required")
	}
}
