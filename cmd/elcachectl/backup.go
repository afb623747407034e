package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/elcache/elcache/client"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// Backup files (docs/operations.md "Backups"): the magic, then records of a 4-byte
// big-endian length and a BackupChunk, then a zero length, then the
// SHA-256 of everything before it.
const backupMagic = "ELCBAK01"

// maxBackupRecord bounds one record, a little over the node's chunk size.
const maxBackupRecord = 64 << 20

// cmdBackup writes a consistent copy of every partition to FILE.
func cmdBackup(e *env, args []string) error {
	fs := e.flagSet("backup")
	pos, err := parseExact(fs, args, 1, "FILE")
	if err != nil {
		return err
	}
	path := pos[0]
	t, err := e.topology()
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename, a no-op
	sum := sha256.New()
	w := bufio.NewWriterSize(io.MultiWriter(tmp, sum), 1<<20)
	w.WriteString(backupMagic)
	conns := map[string]*grpc.ClientConn{}
	defer func() {
		for _, cc := range conns {
			cc.Close()
		}
	}()
	var entries, bytes uint64
	for pid := uint32(0); pid < t.GetPartitionCount(); pid++ {
		n, b, err := e.backupPartition(pid, conns, w)
		if err != nil {
			tmp.Close()
			return err
		}
		entries, bytes = entries+n, bytes+b
	}
	w.Write([]byte{0, 0, 0, 0})
	if err := w.Flush(); err != nil {
		tmp.Close()
		return fmt.Errorf("backup: %w", err)
	}
	if _, err := tmp.Write(sum.Sum(nil)); err != nil {
		tmp.Close()
		return fmt.Errorf("backup: %w", err)
	}
	if err := errors.Join(tmp.Sync(), tmp.Close()); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	j := map[string]any{"file": path, "partitions": t.GetPartitionCount(), "entries": entries, "value_bytes": bytes}
	return e.emit(j, func(out io.Writer) {
		fmt.Fprintf(out, "backed up %d entries (%d bytes of values) from %d partitions to %s\n", entries, bytes, t.GetPartitionCount(), path)
	})
}

// backupPartition streams partition pid from its leader into w, asking
// the topology again when the leader moved.
func (e *env) backupPartition(pid uint32, conns map[string]*grpc.ClientConn, w io.Writer) (entries, bytes uint64, err error) {
	var last error
	for attempt := range 10 {
		if attempt > 0 {
			select {
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			case <-e.ctx.Done():
				return 0, 0, e.ctx.Err()
			}
		}
		t, err := e.topology()
		if err != nil {
			return 0, 0, err
		}
		addr := leaderAddr(t, pid)
		if addr == "" {
			last = fmt.Errorf("partition %d has no leader", pid)
			continue
		}
		cc := conns[addr]
		if cc == nil {
			if cc, err = dial(addr, e.token, e.tls); err != nil {
				return 0, 0, err
			}
			conns[addr] = cc
		}
		// A partition is written to the file only once it has been read
		// whole: a stream that breaks half-way is read again.
		var chunks [][]byte
		entries, bytes = 0, 0
		stream, err := cachev1.NewAdminClient(cc).Backup(e.base, &cachev1.BackupRequest{Partition: pid})
		for err == nil {
			var c *cachev1.BackupChunk
			if c, err = stream.Recv(); err != nil {
				break
			}
			raw, merr := proto.Marshal(c)
			if merr != nil {
				return 0, 0, merr
			}
			chunks = append(chunks, raw)
			for _, en := range c.Entries {
				entries++
				bytes += uint64(len(en.Value))
			}
		}
		if !errors.Is(err, io.EOF) {
			last = rpcError(fmt.Sprintf("backup of partition %d from %s", pid, addr), err)
			continue
		}
		for _, raw := range chunks {
			if _, err := w.Write(binary.BigEndian.AppendUint32(nil, uint32(len(raw)))); err != nil {
				return 0, 0, err
			}
			if _, err := w.Write(raw); err != nil {
				return 0, 0, err
			}
		}
		return entries, bytes, nil
	}
	return 0, 0, last
}

// leaderAddr is the gRPC address of pid's leader in t, or "".
func leaderAddr(t *cachev1.Topology, pid uint32) string {
	for _, p := range t.GetPartitions() {
		if p.GetPartition() != pid || p.GetLeader() == "" {
			continue
		}
		for _, n := range t.GetNodes() {
			if n.GetId() == p.GetLeader() {
				return n.GetAddress()
			}
		}
	}
	return ""
}

// backupReader reads a backup file's records, hashing what it reads.
type backupReader struct {
	r   *bufio.Reader
	sum hash.Hash
}

func openBackup(path string) (*os.File, *backupReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("restore: %w", err)
	}
	br := &backupReader{r: bufio.NewReaderSize(f, 1<<20), sum: sha256.New()}
	magic := make([]byte, len(backupMagic))
	if _, err := io.ReadFull(br.r, magic); err != nil || string(magic) != backupMagic {
		f.Close()
		return nil, nil, fmt.Errorf("restore: %s is not an elcache backup", path)
	}
	br.sum.Write(magic)
	return f, br, nil
}

// next returns the next chunk, or nil at the end record.
func (b *backupReader) next() (*cachev1.BackupChunk, error) {
	var lenBuf [4]byte
	if _, err := io.ReadFull(b.r, lenBuf[:]); err != nil {
		return nil, fmt.Errorf("restore: truncated backup: %w", err)
	}
	b.sum.Write(lenBuf[:])
	n := binary.BigEndian.Uint32(lenBuf[:])
	if n == 0 {
		return nil, nil
	}
	if n > maxBackupRecord {
		return nil, fmt.Errorf("restore: corrupt backup: a record of %d bytes", n)
	}
	raw := make([]byte, n)
	if _, err := io.ReadFull(b.r, raw); err != nil {
		return nil, fmt.Errorf("restore: truncated backup: %w", err)
	}
	b.sum.Write(raw)
	c := &cachev1.BackupChunk{}
	if err := proto.Unmarshal(raw, c); err != nil {
		return nil, fmt.Errorf("restore: corrupt backup record: %w", err)
	}
	return c, nil
}

// verify checks the checksum after the end record.
func (b *backupReader) verify() error {
	want := make([]byte, sha256.Size)
	if _, err := io.ReadFull(b.r, want); err != nil {
		return fmt.Errorf("restore: truncated backup: no checksum")
	}
	if got := b.sum.Sum(nil); string(got) != string(want) {
		return errors.New("restore: the backup's checksum does not match: the file is damaged")
	}
	return nil
}

// eachChunk reads path, calling fn for each chunk (nil fn: only verify).
func eachChunk(path string, fn func(*cachev1.BackupChunk) error) error {
	f, br, err := openBackup(path)
	if err != nil {
		return err
	}
	defer f.Close()
	for {
		c, err := br.next()
		if err != nil {
			return err
		}
		if c == nil {
			return br.verify()
		}
		if fn != nil {
			if err := fn(c); err != nil {
				return err
			}
		}
	}
}

// cmdRestore loads a backup into an empty cluster.
func cmdRestore(e *env, args []string) error {
	fs := e.flagSet("restore")
	modeFlag := fs.String("mode", "cache-only", "")
	durabilityFlag := fs.String("durability", "", "")
	force := fs.Bool("force", false, "")
	pos, err := parseExact(fs, args, 1, "FILE")
	if err != nil {
		return err
	}
	mode, err := parseMode(*modeFlag)
	if err != nil {
		return err
	}
	durability := client.DurabilityDefault
	if *durabilityFlag != "" {
		if durability, err = parseDurability(*durabilityFlag); err != nil {
			return err
		}
	}
	path := pos[0]
	// The whole file is checked before anything is written.
	if err := eachChunk(path, nil); err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	if !*force {
		for en, err := range c.ScanAll(e.base, client.ScanOptions{PageSize: 100, KeysOnly: true}) {
			if err != nil {
				return fmt.Errorf("restore: checking the cluster is empty: %w", err)
			}
			return fmt.Errorf("restore: the cluster is not empty (it holds %q); restore into an empty cluster, or pass --force to write over it", en.Key)
		}
	}
	const inFlight = 64
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		restored uint64
		expired  uint64
	)
	sem := make(chan struct{}, inFlight)
	put := func(en *cachev1.Entry) {
		defer wg.Done()
		defer func() { <-sem }()
		opts := []client.WriteOption{client.WithWriteMode(mode), client.WithDurability(durability)}
		if en.ExpiresAt != nil {
			opts = append(opts, client.WithTTL(time.Until(en.ExpiresAt.AsTime())))
		}
		ctx, cancel := context.WithTimeout(e.base, 30*time.Second)
		_, err := c.Put(ctx, en.Key, en.Value, opts...)
		cancel()
		mu.Lock()
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("restore: put %q: %w", en.Key, err)
		} else if err == nil {
			restored++
		}
		mu.Unlock()
	}
	err = eachChunk(path, func(ch *cachev1.BackupChunk) error {
		for _, en := range ch.Entries {
			if en.ExpiresAt != nil && time.Until(en.ExpiresAt.AsTime()) < time.Millisecond {
				expired++
				continue
			}
			mu.Lock()
			failed := firstErr
			mu.Unlock()
			if failed != nil {
				return failed
			}
			sem <- struct{}{}
			wg.Add(1)
			go put(en)
		}
		return nil
	})
	wg.Wait()
	if err == nil {
		err = firstErr
	}
	if err != nil {
		return err
	}
	j := map[string]any{"file": path, "restored": restored, "expired": expired}
	return e.emit(j, func(out io.Writer) {
		fmt.Fprintf(out, "restored %d entries from %s (%d had expired since the backup)\n", restored, path, expired)
	})
}
