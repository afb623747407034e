package storage

import "github.com/cockroachdb/pebble/v2/vfs"

// syncFirstFS is the filesystem Pebble runs on: before any of Pebble's
// files is synced, it syncs the Raft log engine. Pebble cannot make
// anything durable without a sync (of its write-ahead log, an sstable or
// its manifest), so the state machine's writes, which are applied only
// after their log entries were written, are never durable ahead of those
// entries. Without this, a REPLICATED entry lost in a power failure could
// leave a replica whose state has applied an index its log no longer
// holds, and which Raft may then fill with another entry (DESIGN.md "Per
// request durability").
type syncFirstFS struct {
	vfs.FS
	before func() error
}

func (fs syncFirstFS) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return syncFirstFile{File: f, before: fs.before}, nil
}

func (fs syncFirstFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	return fs.wrap(fs.FS.Create(name, c))
}

func (fs syncFirstFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	return fs.wrap(fs.FS.OpenReadWrite(name, c, opts...))
}

func (fs syncFirstFS) ReuseForWrite(oldname, newname string, c vfs.DiskWriteCategory) (vfs.File, error) {
	return fs.wrap(fs.FS.ReuseForWrite(oldname, newname, c))
}

func (fs syncFirstFS) Unwrap() vfs.FS { return fs.FS }

type syncFirstFile struct {
	vfs.File
	before func() error
}

func (f syncFirstFile) Sync() error {
	if err := f.before(); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f syncFirstFile) SyncData() error {
	if err := f.before(); err != nil {
		return err
	}
	return f.File.SyncData()
}

func (f syncFirstFile) SyncTo(length int64) (bool, error) {
	if err := f.before(); err != nil {
		return false, err
	}
	return f.File.SyncTo(length)
}
