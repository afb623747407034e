package jepsen

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// Ports every node uses on its own address.
const (
	grpcPort   = 7400
	gossipPort = 7946
)

// Proc is one elcache server process, run in its node's namespace. It can
// be killed, paused and started again on the same data directory and
// flags. Its output goes to a log file that grows across restarts.
type Proc struct {
	Name string
	IP   string
	// Addr is the gRPC address, Gossip the memberlist address.
	Addr, Gossip string

	ns      string
	bin     string
	args    []string
	env     []string
	logPath string
	// disk is the loop-mounted file system holding the data directory,
	// or "" when the data directory is a plain folder.
	disk, image string

	conn   *grpc.ClientConn
	Cache  cachev1.CacheClient
	Admin  cachev1.AdminClient
	health healthpb.HealthClient

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has exited
	paused bool
}

func newProc(name, ip, ns, bin string, args, env []string, logPath string) (*Proc, error) {
	p := &Proc{Name: name, IP: ip, Addr: fmt.Sprintf("%s:%d", ip, grpcPort), Gossip: fmt.Sprintf("%s:%d", ip, gossipPort),
		ns: ns, bin: bin, args: args, env: env, logPath: logPath}
	bo := backoff.DefaultConfig
	bo.BaseDelay, bo.MaxDelay = 50*time.Millisecond, 500*time.Millisecond
	conn, err := grpc.NewClient(p.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: bo, MinConnectTimeout: time.Second}))
	if err != nil {
		return nil, err
	}
	p.conn, p.Cache, p.Admin, p.health = conn, cachev1.NewCacheClient(conn), cachev1.NewAdminClient(conn), healthpb.NewHealthClient(conn)
	return p, nil
}

// Start starts the process if it is not running.
func (p *Proc) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.runningLocked() {
		return nil
	}
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close() // the child has its own descriptor
	fmt.Fprintf(f, "=== jepsen: start %s at %s\n", p.Name, time.Now().Format(time.RFC3339Nano))
	// ip netns exec enters the namespace and execs the binary: the pid
	// is the server's own, so signals reach it.
	cmd := exec.Command("ip", append([]string{"netns", "exec", p.ns, p.bin}, p.args...)...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), p.env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	p.cmd, p.exited, p.paused = cmd, exited, false
	return nil
}

func (p *Proc) runningLocked() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Running tells whether the process runs (paused or not).
func (p *Proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.runningLocked()
}

// Paused tells whether the process is stopped by SIGSTOP.
func (p *Proc) Paused() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.paused && p.runningLocked()
}

func (p *Proc) signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.runningLocked() {
		return fmt.Errorf("jepsen: %s is not running", p.Name)
	}
	switch sig {
	case syscall.SIGSTOP:
		p.paused = true
	case syscall.SIGCONT:
		p.paused = false
	}
	return p.cmd.Process.Signal(sig)
}

// Kill sends SIGKILL and waits for the exit.
func (p *Proc) Kill() error {
	if err := p.signal(syscall.SIGKILL); err != nil {
		return err
	}
	p.wait(10 * time.Second)
	return nil
}

// killAll sends SIGKILL to every one of procs before it waits for any of
// them to exit: they die together.
func killAll(procs []*Proc) error {
	var errs []error
	for _, p := range procs {
		errs = append(errs, p.signal(syscall.SIGKILL))
	}
	for _, p := range procs {
		if !p.wait(10 * time.Second) {
			errs = append(errs, fmt.Errorf("jepsen: %s did not exit within 10s of SIGKILL", p.Name))
		}
	}
	return errors.Join(errs...)
}

// startAll starts every one of procs, then waits until each serves.
func startAll(procs []*Proc, timeout time.Duration) error {
	var errs []error
	var started []*Proc
	for _, p := range procs {
		if err := p.Start(); err != nil {
			errs = append(errs, err)
			continue
		}
		started = append(started, p)
	}
	for _, p := range started {
		errs = append(errs, p.WaitServing(timeout))
	}
	return errors.Join(errs...)
}

// Stop sends SIGTERM (resuming a paused process first) and waits up to
// timeout before killing it.
func (p *Proc) Stop(timeout time.Duration) error {
	if !p.Running() {
		return nil
	}
	_ = p.signal(syscall.SIGCONT)
	if err := p.signal(syscall.SIGTERM); err != nil {
		return err
	}
	if !p.wait(timeout) {
		p.Kill()
		return fmt.Errorf("jepsen: %s did not stop within %v of SIGTERM; killed", p.Name, timeout)
	}
	return nil
}

// Pause stops the process with SIGSTOP; Resume continues it.
func (p *Proc) Pause() error  { return p.signal(syscall.SIGSTOP) }
func (p *Proc) Resume() error { return p.signal(syscall.SIGCONT) }

func (p *Proc) wait(timeout time.Duration) bool {
	p.mu.Lock()
	exited := p.exited
	p.mu.Unlock()
	select {
	case <-exited:
		return true
	case <-time.After(timeout):
		return false
	}
}

// WaitServing polls the gRPC health service until the node reports
// SERVING.
func (p *Proc) WaitServing(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		r, err := p.health.Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && r.Status == healthpb.HealthCheckResponse_SERVING {
			return nil
		}
		if !p.Running() {
			return fmt.Errorf("jepsen: %s exited before serving; log: %s\n%s", p.Name, p.logPath, p.Tail(30))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("jepsen: %s not serving after %v: %v", p.Name, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Tail returns the last n lines of the process's log.
func (p *Proc) Tail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// LogHas tells whether the log holds s (a data race report, say).
func (p *Proc) LogHas(s string) bool {
	b, _ := os.ReadFile(p.logPath)
	return strings.Contains(string(b), s)
}

// mountDisk gives the process a file system of its own: an ext4 image,
// loop-mounted on dir, which FreezeDisk can stall.
func (p *Proc) mountDisk(dir, image string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.Create(image)
	if err != nil {
		return err
	}
	err = f.Truncate(2 << 30) // sparse
	f.Close()
	if err != nil {
		return err
	}
	if err := run("mkfs.ext4", "-q", "-F", image); err != nil {
		return err
	}
	if err := run("mount", "-o", "loop", image, dir); err != nil {
		return fmt.Errorf("jepsen: %s: loop mount of its disk: %w", p.Name, err)
	}
	p.disk, p.image = dir, image
	return nil
}

// FreezeDisk stalls every write to the process's file system (fsfreeze):
// its next fsync blocks until ThawDisk, as on a disk that hangs.
func (p *Proc) FreezeDisk() error {
	if p.disk == "" {
		return fmt.Errorf("jepsen: %s has no disk of its own", p.Name)
	}
	return run("fsfreeze", "--freeze", p.disk)
}

// ThawDisk ends FreezeDisk; thawing a disk that is not frozen is a no-op.
func (p *Proc) ThawDisk() error {
	if p.disk == "" {
		return nil
	}
	if err := run("fsfreeze", "--unfreeze", p.disk); err != nil && !strings.Contains(err.Error(), "Invalid argument") {
		return err
	}
	return nil
}

// unmountDisk thaws, unmounts and removes the disk of a stopped process.
func (p *Proc) unmountDisk() {
	if p.disk == "" {
		return
	}
	p.ThawDisk()
	_ = run("umount", p.disk)
	os.Remove(p.image)
	p.disk = ""
}

// Cluster is the elcache processes of a run: the initial members, then
// spares that membership faults add.
type Cluster struct {
	Procs []*Proc
	// Initial is how many of Procs start as the cluster; the rest are
	// spares.
	Initial int
	byName  map[string]*Proc
}

// ClusterConfig describes how to start the nodes.
type ClusterConfig struct {
	Bin        string
	Dir        string // node data directories and logs go under it
	Nodes      int    // initial members
	Spares     int    // extra nodes for join faults
	Partitions int
	Backend    func(name string) string // backing database URL per node
	Env        []string                 // extra environment (ELCACHE_BREAK)
	Extra      []string                 // extra server flags
	// Disks gives every node a loop-mounted file system of its own, for
	// disk stalls; it needs loop devices, mkfs.ext4 and fsfreeze.
	Disks bool
}

// NewCluster creates the processes (not started) on the network.
func NewCluster(net *Network, cfg ClusterConfig) (*Cluster, error) {
	c := &Cluster{Initial: cfg.Nodes, byName: make(map[string]*Proc)}
	var gossip []string
	total := cfg.Nodes + cfg.Spares
	for i := 1; i <= total; i++ {
		name := fmt.Sprintf("n%d", i)
		if err := net.AddNode(name, 10+i); err != nil {
			return nil, err
		}
		if i <= cfg.Nodes {
			gossip = append(gossip, fmt.Sprintf("%s:%d", net.IP(name), gossipPort))
		}
	}
	for i := 1; i <= total; i++ {
		name := fmt.Sprintf("n%d", i)
		ip := net.IP(name)
		dir := filepath.Join(cfg.Dir, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		me := fmt.Sprintf("%s:%d", ip, gossipPort)
		join := slices.DeleteFunc(slices.Clone(gossip), func(s string) bool { return s == me })
		args := []string{"--node-name", name, "--data-dir", filepath.Join(dir, "data"),
			"--grpc-addr", fmt.Sprintf("%s:%d", ip, grpcPort), "--gossip-addr", me,
			"--join", strings.Join(join, ","),
			"--partitions", fmt.Sprint(cfg.Partitions), "--replication-factor", "3",
			"--default-write-mode", "cache_only", "--log-level", "info"}
		if i <= cfg.Nodes {
			args = append(args, "--bootstrap-expect", fmt.Sprint(cfg.Nodes))
		}
		if cfg.Backend != nil {
			args = append(args, "--backend", cfg.Backend(name))
		}
		args = append(args, cfg.Extra...)
		p, err := newProc(name, ip, net.NS(name), cfg.Bin, args, cfg.Env, filepath.Join(cfg.Dir, name+".log"))
		if err != nil {
			return nil, err
		}
		c.Procs = append(c.Procs, p)
		c.byName[name] = p
		if cfg.Disks {
			if err := p.mountDisk(filepath.Join(dir, "data"), filepath.Join(dir, "disk.img")); err != nil {
				return c, err
			}
		}
	}
	return c, nil
}

// Proc returns the process named name, or nil.
func (c *Cluster) Proc(name string) *Proc { return c.byName[name] }

// Members are the initial members' processes.
func (c *Cluster) Members() []*Proc { return c.Procs[:c.Initial] }

// Names lists the names of procs.
func Names(procs []*Proc) []string {
	out := make([]string, len(procs))
	for i, p := range procs {
		out[i] = p.Name
	}
	return out
}

// Start starts the initial members and waits until each serves.
func (c *Cluster) Start(timeout time.Duration) error { return startAll(c.Members(), timeout) }

// Running are the processes that run and are not paused.
func (c *Cluster) Running() []*Proc {
	var out []*Proc
	for _, p := range c.Procs {
		if p.Running() && !p.Paused() {
			out = append(out, p)
		}
	}
	return out
}

// Topology asks the running nodes, in turn, for the partition map.
func (c *Cluster) Topology(ctx context.Context) (*cachev1.Topology, error) {
	var errs []error
	for _, p := range c.Running() {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		t, err := p.Cache.Topology(cctx, &cachev1.TopologyRequest{})
		cancel()
		if err == nil {
			return t, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", p.Name, err))
	}
	return nil, fmt.Errorf("jepsen: no node answered Topology: %w", errors.Join(errs...))
}

// LeaderOf returns the name of partition part's leader, as the cluster's
// map says, or "" if unknown.
func (c *Cluster) LeaderOf(ctx context.Context, part uint32) string {
	t, err := c.Topology(ctx)
	if err != nil || int(part) >= len(t.Partitions) {
		return ""
	}
	id := t.Partitions[part].Leader
	for _, n := range t.Nodes {
		if n.Id == id {
			return n.Name
		}
	}
	return ""
}

// Close stops every process (SIGTERM, then SIGKILL), closes the
// connections and removes the disks.
func (c *Cluster) Close() {
	var wg sync.WaitGroup
	for _, p := range c.Procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.ThawDisk() // a frozen disk would hold the process in the kernel
			p.Stop(20 * time.Second)
			p.conn.Close()
			p.unmountDisk()
		}()
	}
	wg.Wait()
}
