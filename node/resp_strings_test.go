package node_test

import (
	"testing"
	"time"
)

// respStrings runs the string commands through node 0's listener, each
// command's group of steps its own subtest.
func respStrings(t *testing.T, e respEnv) {
	rdb := e.client(t, 0)
	ttl100 := between(90, 100)
	e.runCases(t, rdb, []scriptCase{
		{"GET SET", func(k func(string) string) []step {
			return []step{
				{cmd: args("GET", k("s")), want: nil},
				{cmd: args("SET", k("s"), "v1"), want: "OK"},
				{cmd: args("GET", k("s")), want: "v1"},
				{cmd: args("SET", k("s"), ""), want: "OK"},
				{cmd: args("GET", k("s")), want: ""},
				{cmd: args("set", k("s"), "v1"), want: "OK"},
				{cmd: args("SET", k("s"), "v2", "XX"), want: "OK"},
				{cmd: args("GET", k("s")), want: "v2"},
				{cmd: args("SET", k("absent"), "v", "XX"), want: nil},
				{cmd: args("GET", k("absent")), want: nil},
				{cmd: args("SET", k("s"), "v3", "NX"), want: nil},
				{cmd: args("GET", k("s")), want: "v2"},
				{cmd: args("SET", k("nx"), "v", "nx"), want: "OK"},
				{cmd: args("GET", k("nx")), want: "v"},
				{cmd: args("SET", k("s"), "v4", "GET"), want: "v2"},
				{cmd: args("GET", k("s")), want: "v4"},
				{cmd: args("SET", k("get"), "v", "GET"), want: nil},
				{cmd: args("GET", k("get")), want: "v"},
				{cmd: args("SET", k("s"), "v5", "NX", "GET"), want: "v4"},
				{cmd: args("GET", k("s")), want: "v4"},
				{cmd: args("SET", k("s"), "v6", "XX", "GET"), want: "v4"},
				{cmd: args("GET", k("s")), want: "v6"},
			}
		}},
		{"SET expiry", func(k func(string) string) []step {
			return []step{
				{cmd: args("SET", k("s"), "v", "EX", 100), want: "OK"},
				{cmd: args("TTL", k("s")), want: ttl100},
				{cmd: args("SET", k("s"), "w", "KEEPTTL"), want: "OK"},
				{cmd: args("GET", k("s")), want: "w"},
				{cmd: args("TTL", k("s")), want: ttl100},
				{cmd: args("SET", k("s"), "x"), want: "OK"},
				{cmd: args("TTL", k("s")), want: -1},
				{cmd: args("SET", k("s"), "v", "PX", 100000), want: "OK"},
				{cmd: args("PTTL", k("s")), want: between(90000, 100000)},
				{cmd: args("SET", k("s"), "v", "EXAT", unixIn(100*time.Second)), want: "OK"},
				{cmd: args("TTL", k("s")), want: between(90, 100)},
				{cmd: args("SET", k("s"), "v", "PXAT", unixMsIn(100*time.Second)), want: "OK"},
				{cmd: args("TTL", k("s")), want: ttl100},
				{cmd: args("SET", k("s"), "v", "XX", "EX", 200), want: "OK"},
				{cmd: args("TTL", k("s")), want: between(190, 200)},
				{cmd: args("SET", k("s"), "v", "EXAT", unixIn(-time.Hour)), want: "OK"},
				{cmd: args("GET", k("s")), want: nil},
				{cmd: args("SET", k("s"), "v", "NX", "XX"), err: "ERR syntax error"},
				{cmd: args("SET", k("s"), "v", "EX", 0), err: "ERR invalid expire time in 'set' command"},
				{cmd: args("SET", k("s"), "v", "PX", -5), err: "ERR invalid expire time in 'set' command"},
				{cmd: args("SET", k("s"), "v", "EX", "abc"), err: "ERR value is not an integer or out of range"},
				{cmd: args("SET", k("s"), "v", "EX"), err: "ERR syntax error"},
				{cmd: args("SET", k("s"), "v", "EX", 10, "PX", 100), err: "ERR syntax error"},
				{cmd: args("SET", k("s"), "v", "KEEPTTL", "EX", 10), err: "ERR syntax error"},
				{cmd: args("SET", k("s"), "v", "BOGUS"), err: "ERR syntax error"},
				{cmd: args("GET", k("s")), want: nil},
			}
		}},
		{"SETNX SETEX PSETEX", func(k func(string) string) []step {
			return []step{
				{cmd: args("SETNX", k("n"), "a"), want: 1},
				{cmd: args("SETNX", k("n"), "b"), want: 0},
				{cmd: args("GET", k("n")), want: "a"},
				{cmd: args("SETEX", k("x"), 100, "v"), want: "OK"},
				{cmd: args("GET", k("x")), want: "v"},
				{cmd: args("TTL", k("x")), want: ttl100},
				{cmd: args("SETEX", k("x"), 0, "v"), err: "ERR invalid expire time in 'setex' command"},
				{cmd: args("SETEX", k("x"), "abc", "v"), err: "ERR value is not an integer or out of range"},
				{cmd: args("PSETEX", k("p"), 100000, "v"), want: "OK"},
				{cmd: args("PTTL", k("p")), want: between(90000, 100000)},
				{cmd: args("PSETEX", k("p"), -1, "v"), err: "ERR invalid expire time in 'psetex' command"},
			}
		}},
		{"GETSET GETDEL", func(k func(string) string) []step {
			return []step{
				{cmd: args("GETSET", k("g"), "a"), want: nil},
				{cmd: args("GETSET", k("g"), "b"), want: "a"},
				{cmd: args("GET", k("g")), want: "b"},
				{cmd: args("SETEX", k("g"), 100, "c"), want: "OK"},
				{cmd: args("GETSET", k("g"), "d"), want: "c"},
				{cmd: args("TTL", k("g")), want: -1},
				{cmd: args("GETDEL", k("g")), want: "d"},
				{cmd: args("GETDEL", k("g")), want: nil},
				{cmd: args("EXISTS", k("g")), want: 0},
			}
		}},
		{"GETEX", func(k func(string) string) []step {
			return []step{
				{cmd: args("SET", k("x"), "v"), want: "OK"},
				{cmd: args("GETEX", k("x")), want: "v"},
				{cmd: args("TTL", k("x")), want: -1},
				{cmd: args("GETEX", k("x"), "EX", 100), want: "v"},
				{cmd: args("TTL", k("x")), want: ttl100},
				{cmd: args("GETEX", k("x"), "PX", 50000), want: "v"},
				{cmd: args("PTTL", k("x")), want: between(40000, 50000)},
				{cmd: args("GETEX", k("x"), "EXAT", unixIn(200*time.Second)), want: "v"},
				{cmd: args("TTL", k("x")), want: between(190, 200)},
				{cmd: args("GETEX", k("x"), "PXAT", unixMsIn(300*time.Second)), want: "v"},
				{cmd: args("TTL", k("x")), want: between(290, 300)},
				{cmd: args("GETEX", k("x"), "PERSIST"), want: "v"},
				{cmd: args("TTL", k("x")), want: -1},
				{cmd: args("GETEX", k("absent"), "EX", 10), want: nil},
				{cmd: args("EXISTS", k("absent")), want: 0},
				{cmd: args("GETEX", k("x"), "EX", 10, "PERSIST"), err: "ERR syntax error"},
				{cmd: args("GETEX", k("x"), "EX", 0), err: "ERR invalid expire time in 'getex' command"},
				{cmd: args("GETEX", k("x"), "BOGUS"), err: "ERR syntax error"},
				{cmd: args("TTL", k("x")), want: -1},
			}
		}},
		{"MGET MSET", func(k func(string) string) []step {
			return []step{
				{cmd: args("MSET", k("a"), "1", k("b"), "2", k("c"), "3"), want: "OK"},
				{cmd: args("MGET", k("a"), k("b"), k("absent"), k("c"), k("a")), want: []any{"1", "2", nil, "3", "1"}},
				{cmd: args("MSET", k("a"), "x", k("a"), "y"), want: "OK"},
				{cmd: args("GET", k("a")), want: "y"},
				{cmd: args("MSET", k("a")), err: "ERR wrong number of arguments for 'mset' command"},
				{cmd: args("MSET", k("a"), "1", k("b")), err: "ERR wrong number of arguments for 'mset' command"},
				{cmd: args("MGET"), err: "ERR wrong number of arguments for 'mget' command"},
			}
		}},
		{"INCR DECR", func(k func(string) string) []step {
			return []step{
				{cmd: args("INCR", k("c")), want: 1},
				{cmd: args("INCRBY", k("c"), 10), want: 11},
				{cmd: args("DECR", k("c")), want: 10},
				{cmd: args("DECRBY", k("c"), 3), want: 7},
				{cmd: args("INCRBY", k("c"), -7), want: 0},
				{cmd: args("DECR", k("d")), want: -1},
				{cmd: args("GET", k("c")), want: "0"},
				{cmd: args("SET", k("c"), "5", "EX", 100), want: "OK"},
				{cmd: args("INCR", k("c")), want: 6},
				{cmd: args("TTL", k("c")), want: ttl100},
				{cmd: args("SET", k("s"), "abc"), want: "OK"},
				{cmd: args("INCR", k("s")), err: "ERR value is not an integer or out of range"},
				{cmd: args("SET", k("s"), " 1"), want: "OK"},
				{cmd: args("INCR", k("s")), err: "ERR value is not an integer or out of range"},
				{cmd: args("INCRBY", k("c"), "abc"), err: "ERR value is not an integer or out of range"},
				{cmd: args("SET", k("big"), "9223372036854775807"), want: "OK"},
				{cmd: args("INCR", k("big")), err: "ERR increment or decrement would overflow"},
				{cmd: args("GET", k("big")), want: "9223372036854775807"},
				{cmd: args("DECRBY", k("c"), "-9223372036854775808"), err: "ERR decrement would overflow"},
				{cmd: args("INCRBYFLOAT", k("f"), "10.5"), want: "10.5"},
				{cmd: args("INCRBYFLOAT", k("f"), "0.1"), want: "10.6"},
				{cmd: args("INCRBYFLOAT", k("f"), "-5.0e3"), want: "-4989.4"},
				{cmd: args("GET", k("f")), want: "-4989.4"},
				{cmd: args("INCRBYFLOAT", k("f"), "abc"), err: "ERR value is not a valid float"},
				{cmd: args("INCRBYFLOAT", k("s"), "1"), err: "ERR value is not a valid float"},
				{cmd: args("INCRBYFLOAT", k("c"), "1.5"), want: "7.5"},
			}
		}},
		{"APPEND STRLEN", func(k func(string) string) []step {
			return []step{
				{cmd: args("STRLEN", k("a")), want: 0},
				{cmd: args("APPEND", k("a"), "Hello"), want: 5},
				{cmd: args("APPEND", k("a"), " World"), want: 11},
				{cmd: args("GET", k("a")), want: "Hello World"},
				{cmd: args("STRLEN", k("a")), want: 11},
			}
		}},
		{"GETRANGE", func(k func(string) string) []step {
			return []step{
				{cmd: args("SET", k("r"), "This is a string"), want: "OK"},
				{cmd: args("GETRANGE", k("r"), 0, 3), want: "This"},
				{cmd: args("GETRANGE", k("r"), -3, -1), want: "ing"},
				{cmd: args("GETRANGE", k("r"), 0, -1), want: "This is a string"},
				{cmd: args("GETRANGE", k("r"), 10, 100), want: "string"},
				{cmd: args("GETRANGE", k("r"), -100, 3), want: "This"},
				{cmd: args("GETRANGE", k("r"), 5, 3), want: ""},
				{cmd: args("GETRANGE", k("r"), -1, -5), want: ""},
				{cmd: args("GETRANGE", k("absent"), 0, -1), want: ""},
				{cmd: args("GETRANGE", k("r"), "a", 1), err: "ERR value is not an integer or out of range"},
			}
		}},
		{"SETRANGE", func(k func(string) string) []step {
			return []step{
				{cmd: args("SET", k("r"), "Hello World"), want: "OK"},
				{cmd: args("SETRANGE", k("r"), 6, "Redis"), want: 11},
				{cmd: args("GET", k("r")), want: "Hello Redis"},
				{cmd: args("SETRANGE", k("r"), 0, ""), want: 11},
				{cmd: args("SETRANGE", k("pad"), 5, "x"), want: 6},
				{cmd: args("GET", k("pad")), want: "\x00\x00\x00\x00\x00x"},
				{cmd: args("SETRANGE", k("pad"), 8, "yz"), want: 10},
				{cmd: args("GET", k("pad")), want: "\x00\x00\x00\x00\x00x\x00\x00yz"},
				{cmd: args("SETRANGE", k("empty"), 3, ""), want: 0},
				{cmd: args("EXISTS", k("empty")), want: 0},
				{cmd: args("SETRANGE", k("r"), -1, "x"), err: "ERR offset is out of range"},
				{cmd: args("SETRANGE", k("r"), "x", "x"), err: "ERR value is not an integer or out of range"},
			}
		}},
	})
}
