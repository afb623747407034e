package auth

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// TLSFiles are the PEM files of a node's TLS (docs/operations.md "Security"). With
// Cert and Key set, the node serves TLS to clients and peers and presents
// the same certificate as a client to its peers; CA verifies the peers'
// certificates and, with RequireClientCert, every client's (mutual TLS).
// The certificate and key are read again when they change (checked every
// few seconds), so a certificate can be rotated without a restart; the CA
// file is read at start.
type TLSFiles struct {
	Cert, Key, CA     string
	RequireClientCert bool
}

// Enabled reports whether any of the files is set: the node is to use TLS.
func (f TLSFiles) Enabled() bool { return f.Cert != "" || f.Key != "" || f.CA != "" }

// Validate reports every file missing for TLS.
func (f TLSFiles) Validate() error {
	var errs []error
	if f.Cert == "" || f.Key == "" {
		errs = append(errs, errors.New("TLS needs both a certificate and a key file"))
	}
	if f.CA == "" {
		errs = append(errs, errors.New("TLS needs a CA file to verify the other nodes' certificates"))
	}
	return errors.Join(errs...)
}

// Configs builds the server side and the peer-dialing side of f: the server
// verifies a client certificate when one is given (always, for peers),
// and requires one with RequireClientCert. It reads the files now and
// reports any that cannot be read.
func (f TLSFiles) Configs() (server, peer *tls.Config, err error) {
	kp := &keyPairReloader{cert: f.Cert, key: f.Key}
	if _, err := kp.get(); err != nil {
		return nil, nil, err
	}
	pem, err := os.ReadFile(f.CA)
	if err != nil {
		return nil, nil, fmt.Errorf("auth: TLS CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, nil, fmt.Errorf("auth: TLS CA %s holds no PEM certificate", f.CA)
	}
	server = &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return kp.get() },
		ClientCAs:      pool,
		// Peers always present their certificate; clients must when
		// RequireClientCert is set.
		ClientAuth: tls.VerifyClientCertIfGiven,
	}
	if f.RequireClientCert {
		server.ClientAuth = tls.RequireAndVerifyClientCert
	}
	peer = &tls.Config{
		MinVersion:           tls.VersionTLS12,
		RootCAs:              pool,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return kp.get() },
	}
	return server, peer, nil
}

// keyPairReloader loads a certificate and key, and loads them again when
// either file's modification time changes.
type keyPairReloader struct {
	cert, key string

	mu      sync.Mutex
	kp      *tls.Certificate
	mtimes  [2]time.Time
	checked time.Time
}

// reloadEvery bounds how often the files are looked at.
const reloadEvery = 5 * time.Second

func (r *keyPairReloader) get() (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.kp != nil && time.Since(r.checked) < reloadEvery {
		return r.kp, nil
	}
	r.checked = time.Now()
	var mtimes [2]time.Time
	for i, p := range []string{r.cert, r.key} {
		st, err := os.Stat(p)
		if err != nil {
			if r.kp != nil {
				return r.kp, nil // keep serving the one loaded
			}
			return nil, fmt.Errorf("auth: TLS: %w", err)
		}
		mtimes[i] = st.ModTime()
	}
	if r.kp != nil && mtimes == r.mtimes {
		return r.kp, nil
	}
	kp, err := tls.LoadX509KeyPair(r.cert, r.key)
	if err != nil {
		if r.kp != nil {
			return r.kp, nil // a half-written pair: keep the old one
		}
		return nil, fmt.Errorf("auth: TLS key pair: %w", err)
	}
	r.kp, r.mtimes = &kp, mtimes
	return r.kp, nil
}
