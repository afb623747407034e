package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/elcache/elcache/client"
	"github.com/elcache/elcache/node/version"
)

func cmdPut(e *env, args []string) error {
	fs := e.flagSet("put")
	wf := addWriteFlags(fs, true)
	args, err := parseExact(fs, args, 2, "KEY VALUE")
	if err != nil {
		return err
	}
	opts, err := wf.options()
	if err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	key := []byte(args[0])
	w, err := c.Put(e.ctx, key, []byte(args[1]), opts...)
	if err != nil {
		return err
	}
	// Text mode is silent on success, as Unix tools are, so that
	// `put k v && get k` prints just the value; -o json has the version.
	return e.emit(newWriteJSON(key, w), func(io.Writer) {})
}

func cmdGet(e *env, args []string) error {
	fs := e.flagSet("get")
	rf := addReadFlags(fs)
	args, err := parseExact(fs, args, 1, "KEY")
	if err != nil {
		return err
	}
	opts, err := rf.options()
	if err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	entry, err := c.Get(e.ctx, []byte(args[0]), opts...)
	found := err == nil
	if err != nil && !errors.Is(err, client.ErrNotFound) {
		return err
	}
	if e.json || found {
		err := e.emit(newEntryJSON(entry, &found, true), func(out io.Writer) {
			out.Write(entry.Value)
			fmt.Fprintln(out)
		})
		if err != nil {
			return err
		}
	}
	if !found {
		fmt.Fprintln(e.stderr, "not found")
		return exitStatus(1)
	}
	return nil
}

func cmdDel(e *env, args []string) error {
	fs := e.flagSet("del")
	wf := addWriteFlags(fs, false)
	args, err := parseExact(fs, args, 1, "KEY")
	if err != nil {
		return err
	}
	opts, err := wf.options()
	if err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	key := []byte(args[0])
	existed, err := c.Delete(e.ctx, key, opts...)
	if err != nil {
		return err
	}
	return e.emit(struct {
		keyJSON
		Existed bool `json:"existed"`
	}{newKeyJSON(key), existed}, func(out io.Writer) {
		fmt.Fprintf(out, "existed=%t\n", existed)
	})
}

func cmdCAS(e *env, args []string) error {
	fs := e.flagSet("cas")
	wf := addWriteFlags(fs, true)
	version := fs.Uint64("expect-version", 0, "")
	value := fs.String("expect-value", "", "")
	absent := fs.Bool("expect-absent", false, "")
	args, err := parseExact(fs, args, 2, "KEY NEWVALUE")
	if err != nil {
		return err
	}
	var expects []client.Expectation
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "expect-version":
			expects = append(expects, client.ExpectVersion(*version))
		case "expect-value":
			expects = append(expects, client.ExpectValue([]byte(*value)))
		case "expect-absent":
			if *absent {
				expects = append(expects, client.ExpectAbsent())
			}
		}
	})
	if len(expects) != 1 {
		return usagef("cas needs exactly one of --expect-version, --expect-value and --expect-absent")
	}
	opts, err := wf.options()
	if err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	key := []byte(args[0])
	swapped, v, err := c.CompareAndSet(e.ctx, key, expects[0], []byte(args[1]), opts...)
	if err != nil {
		return err
	}
	err = e.emit(struct {
		keyJSON
		Swapped bool   `json:"swapped"`
		Version uint64 `json:"version"`
	}{newKeyJSON(key), swapped, v}, func(out io.Writer) {
		if swapped {
			fmt.Fprintf(out, "swapped version=%d\n", v)
		} else {
			fmt.Fprintf(out, "not swapped version=%d\n", v)
		}
	})
	if err == nil && !swapped {
		return exitStatus(1)
	}
	return err
}

func cmdMGet(e *env, args []string) error {
	fs := e.flagSet("mget")
	rf := addReadFlags(fs)
	args, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(args) == 0 {
		return usagef("mget needs at least one KEY")
	}
	opts, err := rf.options()
	if err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	keys := make([][]byte, len(args))
	for i, a := range args {
		keys[i] = []byte(a)
	}
	results, err := c.MultiGet(e.ctx, keys, opts...)
	if err != nil {
		return err
	}
	var j struct {
		Results []entryJSON `json:"results"`
	}
	for _, r := range results {
		j.Results = append(j.Results, newEntryJSON(r.Entry, &r.Found, true))
	}
	return e.emit(j, func(out io.Writer) {
		for _, r := range results {
			if r.Found {
				fmt.Fprintf(out, "%s\t%s\n", r.Entry.Key, r.Entry.Value)
			} else {
				fmt.Fprintf(out, "%s\t(not found)\n", r.Entry.Key)
			}
		}
	})
}

func cmdMPut(e *env, args []string) error {
	fs := e.flagSet("mput")
	wf := addWriteFlags(fs, true)
	args, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(args) == 0 || len(args)%2 != 0 {
		return usagef("mput needs KEY VALUE pairs, got %d argument%s", len(args), plural(len(args)))
	}
	opts, err := wf.options()
	if err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	kvs := make([]client.KeyValue, 0, len(args)/2)
	for i := 0; i < len(args); i += 2 {
		kvs = append(kvs, client.KeyValue{Key: []byte(args[i]), Value: []byte(args[i+1])})
	}
	results, err := c.MultiPut(e.ctx, kvs, opts...)
	if err != nil {
		return err
	}
	var j struct {
		Results []writeJSON `json:"results"`
	}
	for i, w := range results {
		j.Results = append(j.Results, newWriteJSON(kvs[i].Key, w))
	}
	return e.emit(j, func(out io.Writer) {
		for i, w := range results {
			fmt.Fprintf(out, "%s\tversion=%d\n", kvs[i].Key, w.Version)
		}
	})
}

func cmdScan(e *env, args []string) error {
	fs := e.flagSet("scan")
	rf := addReadFlags(fs)
	prefix := fs.String("prefix", "", "")
	limit := fs.Int("limit", 0, "")
	pageSize := fs.Int("page-size", 0, "")
	keysOnly := fs.Bool("keys-only", false, "")
	cursor := fs.String("cursor", "", "")
	_, err := parseExact(fs, args, 0, "")
	if err != nil {
		return err
	}
	if *limit < 0 || *pageSize < 0 {
		return usagef("--limit and --page-size must not be negative")
	}
	so := client.ScanOptions{Prefix: []byte(*prefix), KeysOnly: *keysOnly}
	if so.Cursor, err = base64.StdEncoding.DecodeString(*cursor); err != nil {
		return usagef("--cursor: %v", err)
	}
	opts, err := rf.options()
	if err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	var j struct {
		Entries    []entryJSON `json:"entries"`
		NextCursor []byte      `json:"next_cursor,omitempty"`
	}
	j.Entries = []entryJSON{}
	for n := 0; *limit == 0 || n < *limit; {
		// Never fetch past the limit, so that the cursor resumes exactly.
		so.PageSize = *pageSize
		if left := *limit - n; *limit > 0 && (so.PageSize == 0 || so.PageSize > left) {
			so.PageSize = left
		}
		page, next, err := c.Scan(e.ctx, so, opts...)
		if err != nil {
			return err
		}
		n += len(page)
		for _, en := range page {
			if e.json {
				j.Entries = append(j.Entries, newEntryJSON(en, nil, !*keysOnly))
			} else if *keysOnly {
				fmt.Fprintf(e.stdout, "%s\n", en.Key)
			} else {
				fmt.Fprintf(e.stdout, "%s\t%s\n", en.Key, en.Value)
			}
		}
		so.Cursor = next
		if len(next) == 0 {
			break
		}
	}
	j.NextCursor = so.Cursor
	return e.emit(j, func(io.Writer) {
		if len(so.Cursor) > 0 {
			fmt.Fprintf(e.stderr, "more entries: continue with --cursor %s\n", base64.StdEncoding.EncodeToString(so.Cursor))
		}
	})
}

func cmdStats(e *env, args []string) error {
	fs := e.flagSet("stats")
	_, err := parseExact(fs, args, 0, "")
	if err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	s, err := c.Stats(e.ctx)
	if err != nil {
		return err
	}
	j := newStatsJSON(s)
	return e.emit(j, j.writeText)
}

// cmdHealth exits 0 when the node serves the Cache API and 1 when it is up
// but not ready yet (partitions still electing leaders).
func cmdHealth(e *env, args []string) error {
	fs := e.flagSet("health")
	_, err := parseExact(fs, args, 0, "")
	if err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	ready, err := c.Ready(e.ctx)
	if err != nil {
		return err
	}
	status := "serving"
	if !ready {
		status = "not serving"
	}
	if err := e.emit(map[string]any{"status": status, "ready": ready}, func(w io.Writer) { fmt.Fprintln(w, status) }); err != nil {
		return err
	}
	if !ready {
		return exitStatus(1)
	}
	return nil
}

func cmdVersion(e *env, args []string) error {
	fs := e.flagSet("version")
	_, err := parseExact(fs, args, 0, "")
	if err != nil {
		return err
	}
	v := version.String
	// The server's, when it answers soon; the command succeeds without.
	var server, serverErr string
	if c, err := e.client(); err != nil {
		serverErr = err.Error()
	} else {
		ctx, cancel := context.WithTimeout(e.ctx, 2*time.Second)
		st, err := c.Stats(ctx)
		cancel()
		if err != nil {
			serverErr = err.Error()
		} else {
			server = st.GetVersion()
		}
	}
	return e.emit(struct {
		Version       string `json:"version"`
		Go            string `json:"go"`
		ServerVersion string `json:"server_version,omitempty"`
		ServerError   string `json:"server_error,omitempty"`
	}{v, runtime.Version(), server, serverErr}, func(out io.Writer) {
		fmt.Fprintf(out, "elcachectl %s %s\n", v, runtime.Version())
		if server != "" {
			fmt.Fprintf(out, "server %s: elcache %s\n", e.addr, server)
		} else {
			fmt.Fprintf(out, "server %s: unreachable (%s)\n", e.addr, serverErr)
		}
	})
}
