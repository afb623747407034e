package respserver

import "strings"

// globMatch reports whether key matches a Redis glob pattern: * any run,
// ? one byte, [abc] [^abc] [a-z] a set, \x the byte x.
func globMatch(pattern string, key []byte) bool {
	return globAt(pattern, string(key))
}

func globAt(p, s string) bool {
	// Greedy matching with one backtrack point, the last star: on a
	// mismatch the star takes one more byte. Matching a later star never
	// needs an earlier one to take more, so this is exact, and it takes
	// O(len(p) * len(s)) steps.
	starP, starS := -1, 0
	i, j := 0, 0
	for j < len(s) {
		if i < len(p) {
			switch p[i] {
			case '*':
				starP, starS = i, j
				i++
				continue
			case '?':
				i, j = i+1, j+1
				continue
			case '[':
				if rest, ok := matchSet(p[i+1:], s[j]); ok {
					i, j = len(p)-len(rest), j+1
					continue
				}
			case '\\':
				if i+1 < len(p) && p[i+1] == s[j] {
					i, j = i+2, j+1
					continue
				}
				if i+1 == len(p) && s[j] == '\\' {
					i, j = i+1, j+1
					continue
				}
			default:
				if p[i] == s[j] {
					i, j = i+1, j+1
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		starS++
		i, j = starP+1, starS
	}
	for i < len(p) && p[i] == '*' {
		i++
	}
	return i == len(p)
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
