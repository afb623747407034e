package jepsen

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anishathalye/porcupine"
)

// tinyRegInput is an operation on the test's single register.
type tinyRegInput struct {
	put   bool
	value string
}

// tinyRegModel is a single register holding a string ("" = absent).
func tinyRegModel() porcupine.Model {
	return porcupine.Model{
		Init: func() interface{} { return "" },
		Step: func(state, input, output interface{}) (bool, interface{}) {
			in := input.(tinyRegInput)
			if in.put {
				return true, in.value
			}
			return output.(string) == state.(string), state
		},
		DescribeOperation: func(input, output interface{}) string {
			in := input.(tinyRegInput)
			if in.put {
				return "put(" + in.value + ")"
			}
			return "get() -> " + output.(string)
		},
		DescribeState: func(state interface{}) string { return state.(string) },
	}
}

const reportMS = int64(1e6)

func reportHistory() ([]Op, []Fault, []Result) {
	ops := []Op{
		{Process: 0, Workload: "register", F: FPut, Key: "k", Value: "a", Durability: DurabilitySync, Start: 1 * reportMS, End: 3 * reportMS, Outcome: OK},
		{Process: 1, Workload: "register", F: FGet, Key: "k", Value: "a", Found: true, Start: 4 * reportMS, End: 6 * reportMS, Outcome: OK},
		{Process: 0, Workload: "register", F: FPut, Key: "k", Value: "b", Start: 200 * reportMS, End: 1200 * reportMS, Outcome: Unknown, Error: "deadline exceeded"},
		{Process: 1, Workload: "register", F: FGet, Key: "k", Start: 300 * reportMS, End: 310 * reportMS, Outcome: Fail, Error: "unavailable"},
		{Process: 1, Workload: "register", F: FGet, Key: "k", Value: "b", Found: true, Start: 1500 * reportMS, End: 1502 * reportMS, Outcome: OK},
		{Process: 2, Workload: "register", F: FCAS, Key: "k", Expect: "b", Value: "c", Start: 1600 * reportMS, End: 1650 * reportMS, Outcome: Fail, Error: "invalid argument"},
		{Process: 3, Workload: "set", F: FAdd, Key: "e1", Value: "1", Durability: DurabilityReplicated, Start: 10 * reportMS, End: 12 * reportMS, Outcome: OK},
		{Process: 3, Workload: "set", F: FAdd, Key: "e2", Value: "2", Durability: DurabilityReplicated, Start: 400 * reportMS, End: 900 * reportMS, Outcome: Unknown, Error: "timeout"},
		{Process: 4, Workload: "set", F: FGet, Key: "e1", Start: 1800 * reportMS, End: 1801 * reportMS, Outcome: OK, Found: true, Final: true},
	}
	faults := []Fault{
		{Kind: "partition", Targets: []string{"n1", "n2"}, Detail: "{n1 n2} | {n3 n4 n5}", Start: 100 * reportMS, End: 1000 * reportMS},
		{Kind: "kill", Targets: []string{"n3"}, Detail: "SIGKILL <n3>", Start: 800 * reportMS}, // never healed
	}
	results := []Result{
		{Checker: "linearizable", Valid: true, Ops: 6, Figures: map[string]float64{"partitions": 1}},
		{Checker: "set", Valid: false, Ops: 3,
			Anomalies: []Anomaly{
				{Kind: "lost-element", Key: "e1", Detail: "acknowledged add of e1 <missing> from final read", At: 1801 * reportMS},
				{Kind: "lost-element", Key: "e9", Detail: "acknowledged add of e9 missing"},
			},
			Figures: map[string]float64{"anomalies_total": 5, "visibility_p50_ms": math.NaN()},
		},
	}
	return ops, faults, results
}

// tinyRegCheck runs porcupine on the register workload's ok and unknown
// operations, the way a linearizability checker would.
func tinyRegCheck(t *testing.T, ops []Op) porcupine.LinearizationInfo {
	t.Helper()
	var history []porcupine.Operation
	for _, op := range ops {
		if op.Workload != "register" || op.Outcome == Fail || op.F == FCAS {
			continue
		}
		history = append(history, porcupine.Operation{
			ClientId: op.Process,
			Input:    tinyRegInput{put: op.F == FPut, value: op.Value},
			Call:     op.Start,
			Output:   op.Value,
			Return:   op.End,
		})
	}
	res, info := porcupine.CheckOperationsVerbose(tinyRegModel(), history, 0)
	if res != porcupine.Ok {
		t.Fatalf("register history: %v, want ok", res)
	}
	return info
}

func TestReport(t *testing.T) {
	ops, faults, results := reportHistory()
	for _, tc := range []struct {
		name    string
		lin     func(t *testing.T) porcupine.LinearizationInfo
		wantLin bool
	}{
		{"with linearizations", func(t *testing.T) porcupine.LinearizationInfo { return tinyRegCheck(t, ops) }, true},
		{"no linearizable ops", func(*testing.T) porcupine.LinearizationInfo { return porcupine.LinearizationInfo{} }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := Summary{Seed: 42, Profile: "quick", Nodes: 5, Duration: 2, Broken: []string{"skip-fsync"},
				Reproduce: "go test ./jepsen -run TestJepsen -seed 42 -profile quick"}
			Summarize(&s, ops, faults, results)
			if err := WriteReport(dir, s, ops, faults, tc.lin(t), tinyRegModel()); err != nil {
				t.Fatal(err)
			}

			b, err := os.ReadFile(filepath.Join(dir, ResultsFile))
			if err != nil {
				t.Fatal(err)
			}
			var got Summary
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("results.json: %v", err)
			}
			if got.Valid || got.Seed != 42 || got.Profile != "quick" || len(got.Checkers) != 2 {
				t.Errorf("results.json: valid %v seed %d profile %q checkers %d", got.Valid, got.Seed, got.Profile, len(got.Checkers))
			}
			for k, want := range map[string]int{"ok": 5, "fail": 2, "unknown": 2, "total": 9} {
				if got.Ops[k] != want {
					t.Errorf("ops[%s] = %d, want %d", k, got.Ops[k], want)
				}
			}
			if got.OpsByWorkload["register"] != 6 || got.OpsByWorkload["set"] != 3 {
				t.Errorf("ops by workload = %v", got.OpsByWorkload)
			}
			if got.WritesByDurability[DurabilitySync] != 1 || got.WritesByDurability[DurabilityReplicated] != 2 {
				t.Errorf("writes by durability = %v", got.WritesByDurability)
			}
			if got.Faults["partition"] != 1 || got.Faults["kill"] != 1 {
				t.Errorf("faults = %v", got.Faults)
			}
			// Two listed, five in all, all of one kind.
			if got.Anomalies["lost-element"] != 5 || len(got.Anomalies) != 1 {
				t.Errorf("anomalies = %v, want lost-element: 5", got.Anomalies)
			}
			if _, ok := got.Checkers[1].Figures["visibility_p50_ms"]; ok {
				t.Error("results.json kept a NaN figure")
			}

			b, err = os.ReadFile(filepath.Join(dir, IndexFile))
			if err != nil {
				t.Fatal(err)
			}
			page := string(b)
			for _, want := range []string{"INVALID", "<svg", "partition", "kill", "lost-element",
				"skip-fsync", "-seed 42", "writes at durability", "replicated", "{n1 n2} | {n3 n4 n5}", "SIGKILL &lt;n3&gt;", "&lt;missing&gt;"} {
				if !strings.Contains(page, want) {
					t.Errorf("index.html lacks %q", want)
				}
			}
			if strings.Contains(page, "ZgotmplZ") {
				t.Error("index.html has a value html/template refused")
			}
			if strings.Contains(page, "<missing>") {
				t.Error("index.html has an unescaped detail")
			}
			if got := strings.Contains(page, `href="linearizability.html"`); got != tc.wantLin {
				t.Errorf("index.html links linearizability.html: %v, want %v", got, tc.wantLin)
			}

			b, err = os.ReadFile(filepath.Join(dir, LinearizabilityFile))
			switch {
			case tc.wantLin && err != nil:
				t.Fatal(err)
			case tc.wantLin && !strings.Contains(string(b), "nemesis"):
				t.Error("linearizability.html lacks the nemesis annotations")
			case !tc.wantLin && !os.IsNotExist(err):
				t.Errorf("linearizability.html written without linearizations (err %v)", err)
			}
		})
	}
}

func TestReportSummarizeValid(t *testing.T) {
	for _, tc := range []struct {
		name    string
		results []Result
		want    bool
	}{
		{"no checkers", nil, false},
		{"all valid", []Result{{Checker: "a", Valid: true}, {Checker: "b", Valid: true}}, true},
		{"one invalid", []Result{{Checker: "a", Valid: true}, {Checker: "b"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s Summary
			Summarize(&s, nil, nil, tc.results)
			if s.Valid != tc.want {
				t.Errorf("valid = %v, want %v", s.Valid, tc.want)
			}
			if s.Ops["total"] != 0 || s.Ops["ok"] != 0 || s.Anomalies == nil || s.Faults == nil {
				t.Errorf("summary of nothing: %+v", s)
			}
		})
	}
}

func TestReportUnlistedAnomalies(t *testing.T) {
	var s Summary
	Summarize(&s, nil, nil, []Result{{Checker: "mixed",
		Anomalies: []Anomaly{{Kind: "a"}, {Kind: "b"}},
		Figures:   map[string]float64{"anomalies_total": 10}}})
	if s.Anomalies["a"] != 1 || s.Anomalies["b"] != 1 || s.Anomalies[unlistedAnomalyKind] != 8 {
		t.Errorf("anomalies = %v", s.Anomalies)
	}
}

func TestReportSamplePoints(t *testing.T) {
	ops := make([]Op, 50000)
	for i := range ops {
		ops[i].Outcome = OK
		if i%100 == 0 {
			ops[i].Outcome = Unknown
		}
	}
	idx := samplePoints(ops, maxLatencyPoints)
	if len(idx) != maxLatencyPoints {
		t.Fatalf("sampled %d points, want %d", len(idx), maxLatencyPoints)
	}
	unknown := 0
	for _, i := range idx {
		if ops[i].Outcome == Unknown {
			unknown++
		}
	}
	if unknown != 500 {
		t.Errorf("sampled %d unknown ops, want all 500", unknown)
	}
}

func TestReportFaultLanes(t *testing.T) {
	faults := []Fault{
		{Start: 0, End: 10},
		{Start: 5, End: 8}, // overlaps the first
		{Start: 10, End: 20},
		{Start: 15}, // unhealed: until 100
		{Start: 30, End: 40},
	}
	got := faultLanes(faults, 100)
	want := []int{0, 1, 0, 1, 0}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("lanes = %v, want %v", got, want)
		}
	}
}

// A model that does not replay the linearization makes porcupine panic;
// WriteReport reports it and still writes the rest.
func TestReportWrongModel(t *testing.T) {
	ops, faults, results := reportHistory()
	var s Summary
	Summarize(&s, ops, faults, results)
	wrong := tinyRegModel()
	wrong.Step = func(state, _, _ interface{}) (bool, interface{}) { return false, state }
	dir := t.TempDir()
	if err := WriteReport(dir, s, ops, faults, tinyRegCheck(t, ops), wrong); err == nil {
		t.Error("WriteReport with the wrong model: no error")
	}
	for _, name := range []string{ResultsFile, IndexFile} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Error(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, LinearizabilityFile)); !os.IsNotExist(err) {
		t.Errorf("half-written linearizability.html left behind (err %v)", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, IndexFile)); strings.Contains(string(b), `href="linearizability.html"`) {
		t.Error("index.html links the missing linearizability.html")
	}
}
