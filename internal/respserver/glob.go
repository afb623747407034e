package respserver

import "strings"

// globMatch reports whether key matches a Redis glob pattern: * any run,
// ? one byte, [abc] [^abc] [a-z] a set, \x the byte x.
func globMatch(pattern string, key []byte) bool {
	return globAt(pattern, string(key), 0)
}

// maxGlobDepth bounds the backtracking of * (a pattern of many stars
// against a long key must not take exponential time).
const maxGlobDepth = 1000

func globAt(p, s string, depth int) bool {
	if depth > maxGlobDepth {
		return false
	}
	for len(p) > 0 {
		switch p[0] {
		case '*':
			for len(p) > 1 && p[1] == '*' {
				p = p[1:]
			}
			if len(p) == 1 {
				return true
			}
			for i := 0; i <= len(s); i++ {
				if globAt(p[1:], s[i:], depth+1) {
					return true
				}
			}
			return false
		case '?':
			if len(s) == 0 {
				return false
			}
			p, s = p[1:], s[1:]
		case '[':
			if len(s) == 0 {
				return false
			}
			rest, ok := matchSet(p[1:], s[0])
			if !ok {
				return false
			}
			p, s = rest, s[1:]
		case '\\':
			if len(p) >= 2 {
				p = p[1:]
			}
			fallthrough
		default:
			if len(s) == 0 || p[0] != s[0] {
				return false
			}
			p, s = p[1:], s[1:]
		}
	}
	return len(s) == 0
}

// matchSet matches c against the set that p starts with (after '['),
// and returns the pattern after the set.
func matchSet(p string, c byte) (string, bool) {
	not := len(p) > 0 && p[0] == '^'
	if not {
		p = p[1:]
	}
	match := false
	for len(p) > 0 && p[0] != ']' {
		switch {
		case p[0] == '\\' && len(p) >= 2:
			match = match || p[1] == c
			p = p[2:]
		case len(p) >= 3 && p[1] == '-' && p[2] != ']':
			lo, hi := p[0], p[2]
			if lo > hi {
				lo, hi = hi, lo
			}
			match = match || lo <= c && c <= hi
			p = p[3:]
		default:
			match = match || p[0] == c
			p = p[1:]
		}
	}
	if len(p) > 0 {
		p = p[1:] // the ']'
	}
	return p, match != not
}

// globPrefix is the literal start of a pattern, before any special byte:
// every key that matches starts with it, so a scan may ask only for it.
func globPrefix(pattern string) string {
	i := strings.IndexAny(pattern, "*?[\\")
	if i < 0 {
		return pattern
	}
	return pattern[:i]
}
