package auth

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestTokenFile(t *testing.T) {
	dir := t.TempDir()
	write := func(content string) string {
		p := filepath.Join(dir, fmt.Sprintf("tokens-%d", time.Now().UnixNano()))
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("# comment\n\nalice read alice-secret-0123456789\nnodes peer peer-secret-0123456789ab\n")
	tokens, err := ReadTokenFile(good)
	if err != nil || len(tokens) != 2 || tokens[0].Name != "alice" || tokens[0].Role != RoleRead || tokens[1].Role != RolePeer {
		t.Fatalf("good file: %v, %v", tokens, err)
	}
	for _, tt := range []struct{ content, want string }{
		{"alice read\n", "want NAME ROLE SECRET"},
		{"alice root alice-secret-0123456789\n", `unknown role "root"`},
		{"alice read short\n", "shorter than 16"},
		{"a read same-secret-0123456789\nb write same-secret-0123456789\n", "same secret"},
		{"a read a-secret-0123456789xx\na write b-secret-0123456789xx\n", "appears twice"},
	} {
		_, err := ReadTokenFile(write(tt.content))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: %v, want %q", tt.content, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret-0123456789") {
			t.Errorf("error shows a secret: %v", err)
		}
	}
}

func TestValidateTokens(t *testing.T) {
	ok := Token{Name: "a", Role: RoleRead, Secret: "a-secret-0123456789"}
	for _, tt := range []struct {
		name   string
		tokens []Token
		want   string // "" means valid
	}{
		{"none", nil, ""},
		{"one", []Token{ok}, ""},
		{"no name", []Token{{Role: RoleRead, Secret: "a-secret-0123456789"}}, "has no name"},
		{"role zero", []Token{{Name: "a", Secret: "a-secret-0123456789"}}, `token "a": unknown role`},
		{"role past peer", []Token{{Name: "a", Role: RolePeer + 1, Secret: "a-secret-0123456789"}}, `token "a": unknown role`},
		{"every problem", []Token{{Name: "x", Role: RoleRead, Secret: "short"}, ok, {Name: "a", Role: RoleRead, Secret: "b-secret-0123456789"}},
			`token "x": secret shorter than 16 characters; token name "a" appears twice`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateTokens(tt.tokens)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("ValidateTokens: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ValidateTokens: %v, want %q", err, tt.want)
			}
		})
	}
}

func TestRoleString(t *testing.T) {
	for r, want := range map[Role]string{RoleRead: "read", RoleWrite: "write", RoleAdmin: "admin", RolePeer: "peer", 0: "role(0)", 9: "role(9)"} {
		if got := r.String(); got != want {
			t.Errorf("Role(%d).String() = %q, want %q", int(r), got, want)
		}
	}
}
