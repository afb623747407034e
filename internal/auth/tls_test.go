package auth

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTLSFilesValidate(t *testing.T) {
	for _, tt := range []struct {
		files   TLSFiles
		enabled bool
		want    []string // every problem reported; none: valid
	}{
		// Validate is for files that are Enabled; it reports what is missing.
		{TLSFiles{}, false, []string{"both a certificate and a key", "a CA file"}},
		{TLSFiles{Cert: "c", Key: "k", CA: "ca"}, true, nil},
		{TLSFiles{Cert: "c", Key: "k"}, true, []string{"a CA file"}},
		{TLSFiles{Cert: "c", CA: "ca"}, true, []string{"both a certificate and a key"}},
		{TLSFiles{CA: "ca", RequireClientCert: true}, true, []string{"both a certificate and a key"}},
		{TLSFiles{RequireClientCert: true}, false, []string{"both a certificate and a key", "a CA file"}},
	} {
		if got := tt.files.Enabled(); got != tt.enabled {
			t.Errorf("%+v: Enabled %v, want %v", tt.files, got, tt.enabled)
		}
		err := tt.files.Validate()
		if (err == nil) != (len(tt.want) == 0) {
			t.Errorf("%+v: Validate %v, want %q", tt.files, err, tt.want)
		}
		for _, w := range tt.want {
			if err != nil && !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: Validate %v, want %q", tt.files, err, w)
			}
		}
	}
}

func TestTLSConfigsFiles(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not-pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	_, _, err := TLSFiles{Cert: missing, Key: missing, CA: missing}.Configs()
	if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "auth: TLS") {
		t.Errorf("missing files: %v", err)
	}
	_, _, err = TLSFiles{Cert: notPEM, Key: notPEM, CA: notPEM}.Configs()
	if err == nil || !strings.Contains(err.Error(), "auth: TLS key pair") {
		t.Errorf("files that are not PEM: %v", err)
	}
}
