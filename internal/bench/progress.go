package bench

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progressBar shows how a run goes on a terminal: one line redrawn in
// place with "\r" on every update. Elsewhere (a file, a pipe, CI logs) it
// prints a plain line at most once a second. Its Update is a
// ProgressFunc; Run calls it from one goroutine.
type progressBar struct {
	w     io.Writer
	tty   bool
	name  string
	keys  int
	wu    time.Duration // warm-up
	phase string
	width int    // of the last line drawn, to blank what is left of it
	ended string // the phase whose end was shown

	lastAt    time.Time // of the last update
	lastOps   int64
	rate      float64 // ops/s between the last two updates
	lastPrint time.Time
}

// newProgressBar returns a bar for a run of cfg against target name,
// written to w, redrawn in place if tty (see isTerminal).
func newProgressBar(w io.Writer, tty bool, name string, cfg RunConfig) *progressBar {
	return &progressBar{w: w, tty: tty, name: name, keys: cfg.Keys, wu: cfg.Warmup}
}

// isTerminal reports whether w is a file that is a character device.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Update is a ProgressFunc.
func (p *progressBar) Update(done, total time.Duration, ops int64) {
	now := time.Now()
	phase, pct := "measure", 0.0
	switch {
	case total == 0:
		phase = "load"
		if p.keys > 0 {
			pct = 100 * float64(ops) / float64(p.keys)
		}
	case done < p.wu:
		phase = "warm-up"
		pct = 100 * float64(done) / float64(total)
	default:
		pct = 100 * float64(done) / float64(total)
	}
	final := (total > 0 && done >= total) || (total == 0 && ops >= int64(p.keys))
	if final && p.ended == phase {
		return // shown already
	}
	if final {
		p.ended = phase
	}
	if phase != p.phase && !(p.phase == "warm-up" && phase == "measure") {
		p.lastAt = time.Time{} // ops count from the phase's start
	}
	switch {
	case final:
		// The last call comes after a drain: keep the last rate.
	case p.lastAt.IsZero():
		if done > 0 {
			p.rate = float64(ops) / done.Seconds()
		}
	default:
		if dt := now.Sub(p.lastAt).Seconds(); dt > 0 {
			p.rate = float64(ops-p.lastOps) / dt
		}
	}
	p.lastAt, p.lastOps = now, ops
	newPhase := phase != p.phase
	p.phase = phase

	elapsed := fmt.Sprintf("%s/%s", fmtDur(done), fmtDur(total))
	if total == 0 {
		elapsed = fmt.Sprintf("%d/%d keys, %s", ops, p.keys, fmtDur(done))
	}
	line := fmt.Sprintf("%s  %-7s %s %5.1f%%  %s  %s ops/s",
		p.name, phase, bar(pct, 20), pct, elapsed, fmtRate(p.rate))
	if p.tty {
		pad := max(p.width-len(line), 0)
		fmt.Fprintf(p.w, "\r%s%s", line, strings.Repeat(" ", pad))
		p.width = len(line)
		if final {
			fmt.Fprintln(p.w)
			p.width = 0
		}
		return
	}
	if newPhase || final || now.Sub(p.lastPrint) >= time.Second {
		fmt.Fprintln(p.w, line)
		p.lastPrint = now
	}
}

// bar draws pct (0..100) with n cells.
func bar(pct float64, n int) string {
	full := min(max(int(pct/100*float64(n)+0.5), 0), n)
	return "[" + strings.Repeat("#", full) + strings.Repeat(".", n-full) + "]"
}

// fmtDur shows d to the tenth of a second, truncated: "4s" only when
// it is all done.
func fmtDur(d time.Duration) string {
	return d.Truncate(100 * time.Millisecond).String()
}

// fmtRate shows r with 3 significant digits and a k or M suffix.
func fmtRate(r float64) string {
	switch {
	case r >= 1e6:
		return sig3(r/1e6) + "M"
	case r >= 1e3:
		return sig3(r/1e3) + "k"
	}
	return fmt.Sprintf("%.0f", r)
}
