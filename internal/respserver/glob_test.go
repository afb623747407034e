package respserver

import "testing"

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		pattern, key string
		want         bool
	}{
		{"*", "", true},
		{"*", "anything", true},
		{"user:*", "user:42", true},
		{"user:*", "users:42", false},
		{"h?llo", "hello", true},
		{"h?llo", "hllo", false},
		{"h*llo", "heeeello", true},
		{"h[ae]llo", "hallo", true},
		{"h[ae]llo", "hillo", false},
		{"h[^e]llo", "hallo", true},
		{"h[^e]llo", "hello", false},
		{"h[a-b]llo", "hbllo", true},
		{"h[a-b]llo", "hcllo", false},
		{"h[b-a]llo", "hallo", true},
		{`h\*llo`, "h*llo", true},
		{`h\*llo`, "hello", false},
		{"a*b*c", "aXXbYYc", true},
		{"a*b*c", "aXXbYY", false},
		{"[", "a", false},
		{"abc", "abc", true},
		{"abc", "abcd", false},
		{"**a", "bba", true},
	}
	for _, tc := range tests {
		if got := globMatch(tc.pattern, []byte(tc.key)); got != tc.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tc.pattern, tc.key, got, tc.want)
		}
	}
}

// TestGlobMatchBounded: a pattern of many stars against a long key that
// does not match ends (the backtracking depth is bounded).
func TestGlobMatchBounded(t *testing.T) {
	p := ""
	for range 40 {
		p += "*a"
	}
	key := make([]byte, 2000)
	for i := range key {
		key[i] = 'a'
	}
	key[len(key)-1] = 'b'
	if globMatch(p+"c", key) {
		t.Fatal("matched a key that ends in b against a pattern that ends in c")
	}
}

func TestGlobPrefix(t *testing.T) {
	for pattern, want := range map[string]string{"user:*": "user:", "*": "", "abc": "abc", "a?c": "a", `a\*`: "a", "x[yz]": "x"} {
		if got := globPrefix(pattern); got != want {
			t.Errorf("globPrefix(%q) = %q, want %q", pattern, got, want)
		}
	}
}
