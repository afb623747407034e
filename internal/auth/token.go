package auth

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"os"
	"strings"
)

// Role is what a token may do; each role includes the ones before it.
type Role int

const (
	RoleRead  Role = iota + 1 // reads, Stats, Topology, Members
	RoleWrite                 // writes too
	RoleAdmin                 // Admin.Drain too
	RolePeer                  // node-to-node services: nodes only
)

var roleNames = map[string]Role{"read": RoleRead, "write": RoleWrite, "admin": RoleAdmin, "peer": RolePeer}

func (r Role) String() string {
	for name, v := range roleNames {
		if v == r {
			return name
		}
	}
	return fmt.Sprintf("role(%d)", int(r))
}

// Token is one client credential: a name (for logs, limits and metrics;
// the secret itself is never logged) and a role.
type Token struct {
	Name   string
	Role   Role
	Secret string
}

// minSecretLen is the shortest token secret accepted.
const minSecretLen = 16

// ReadTokenFile reads tokens, one per line as "NAME ROLE SECRET"; blank
// lines and lines starting with # are skipped. Errors name the line, never
// the secret.
func ReadTokenFile(path string) ([]Token, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	defer f.Close()
	var out []Token
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Fields(text)
		if len(fields) != 3 {
			return nil, fmt.Errorf("token file %s line %d: want NAME ROLE SECRET, got %d fields", path, line, len(fields))
		}
		role, ok := roleNames[fields[1]]
		if !ok {
			return nil, fmt.Errorf("token file %s line %d: unknown role %q (read, write, admin or peer)", path, line, fields[1])
		}
		out = append(out, Token{Name: fields[0], Role: role, Secret: fields[2]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("token file %s: %w", path, err)
	}
	return out, ValidateTokens(out)
}

// ValidateTokens checks names and secrets are unique and secrets long
// enough; the error names every problem, never a secret.
func ValidateTokens(tokens []Token) error {
	names, secrets := map[string]bool{}, map[[32]byte]bool{}
	var errs []string
	for _, t := range tokens {
		switch {
		case t.Name == "":
			errs = append(errs, "a token has no name")
		case names[t.Name]:
			errs = append(errs, fmt.Sprintf("token name %q appears twice", t.Name))
		case t.Role < RoleRead || t.Role > RolePeer:
			errs = append(errs, fmt.Sprintf("token %q: unknown role", t.Name))
		case len(t.Secret) < minSecretLen:
			errs = append(errs, fmt.Sprintf("token %q: secret shorter than %d characters", t.Name, minSecretLen))
		case secrets[sha256.Sum256([]byte(t.Secret))]:
			errs = append(errs, fmt.Sprintf("token %q: same secret as another token", t.Name))
		}
		names[t.Name] = true
		secrets[sha256.Sum256([]byte(t.Secret))] = true
	}
	if len(errs) > 0 {
		return fmt.Errorf("tokens: %s", strings.Join(errs, "; "))
	}
	return nil
}
