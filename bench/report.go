package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// stats summarises samples (milliseconds, or KiB for memory).
type stats struct {
	N      int     `json:"n"`
	Median float64 `json:"median"`
	P95    float64 `json:"p95"`
	Mean   float64 `json:"mean"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

func summarize(xs []float64) (stats, bool) {
	if len(xs) == 0 {
		return stats{}, false
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	sum := 0.0
	for _, x := range s {
		sum += x
	}
	return stats{
		N: len(s), Median: quantile(s, 0.5), P95: quantile(s, 0.95),
		Mean: sum / float64(len(s)), Min: s[0], Max: s[len(s)-1],
	}, true
}

// quantile of sorted s, linearly interpolated between closest ranks.
func quantile(s []float64, q float64) float64 {
	pos := q * float64(len(s)-1)
	lo := int(math.Floor(pos))
	hi := int(math.Ceil(pos))
	return s[lo] + (s[hi]-s[lo])*(pos-float64(lo))
}

type scenarioReport struct {
	Key       string             `json:"key"`
	Title     string             `json:"title"`
	WallMS    map[string]stats   `json:"wall_ms"`
	CPUMS     map[string]stats   `json:"cpu_ms,omitempty"`
	Ratios    map[string]float64 `json:"wall_median_ratios,omitempty"`
	CPURatios map[string]float64 `json:"cpu_median_ratios,omitempty"`
	CPUWhat   string             `json:"cpu_covers,omitempty"`
}

type memoryReport struct {
	Source     string             `json:"source"`
	PeakKiB    map[string]stats   `json:"peak_kib"`
	CurrentKiB map[string]stats   `json:"current_kib"`
	Ratios     map[string]float64 `json:"peak_median_ratios,omitempty"`
}

type report struct {
	Date        string           `json:"date"`
	Kernel      string           `json:"kernel"`
	CPUs        int              `json:"cpus"`
	CPUModel    string           `json:"cpu_model,omitempty"`
	LoadAvg     []string         `json:"loadavg_start_end"`
	Command     string           `json:"command"`
	Settings    map[string]any   `json:"settings"`
	Cgroups     string           `json:"cgroups"`
	Runtimes    []*runtimeInfo   `json:"runtimes"`
	Scenarios   []scenarioReport `json:"scenarios"`
	Memory      *memoryReport    `json:"memory,omitempty"`
	DurationS   float64          `json:"duration_s"`
	Notes       []string         `json:"notes,omitempty"`
	Leftovers   []string         `json:"leftovers"`
	Interrupted bool             `json:"interrupted,omitempty"`
	Error       string           `json:"error,omitempty"`
}

// scenario keys in print order, with titles for the wall and CPU tables.
func (b *bench) keys() (keys []string, wall, cpu map[string]string) {
	wall = map[string]string{
		"run":              "run /bin/true",
		"lifecycle":        "create+start+wait+delete",
		"lifecycle/create": "  create",
		"lifecycle/start":  "  start",
		"lifecycle/delete": "  delete",
		"exec":             "exec /bin/true",
	}
	cpu = map[string]string{
		"run":              "run /bin/true (runtime+container)",
		"lifecycle":        "create..delete (+container init)",
		"lifecycle/create": "  create (process only)",
		"lifecycle/start":  "  start",
		"lifecycle/delete": "  delete",
		"exec":             "exec /bin/true",
	}
	keys = []string{"run", "lifecycle", "lifecycle/create", "lifecycle/start", "lifecycle/delete", "exec"}
	for _, n := range b.cfg.par {
		k := fmt.Sprintf("parallel-%d", n)
		keys = append(keys, k, k+"/delete")
		wall[k] = fmt.Sprintf("%d x run -d, batch", n)
		wall[k+"/delete"] = fmt.Sprintf("%d x delete -f, batch", n)
		cpu[k] = fmt.Sprintf("%d x run -d (+containers), batch", n)
		cpu[k+"/delete"] = fmt.Sprintf("%d x delete -f, batch", n)
	}
	return keys, wall, cpu
}

// ratios of hull's value to each other runtime's.
func (b *bench) ratios(get func(name string) (float64, bool)) map[string]float64 {
	h, ok := get("hull")
	if !ok {
		return nil
	}
	out := map[string]float64{}
	for _, r := range b.rts {
		if r.Name == "hull" {
			continue
		}
		if v, ok := get(r.Name); ok && v > 0 {
			out["hull/"+r.Name] = h / v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func (b *bench) buildReport(rep *report) {
	keys, wallTitles, _ := b.keys()
	cpuWhat := map[string]string{
		"run":       "the run process and everything it waited for (the container)",
		"lifecycle": "create + start + delete processes + the container's process (reaped by the bench as subreaper)",
		"exec":      "the exec process and everything it waited for",
	}
	for _, n := range b.cfg.par {
		cpuWhat[fmt.Sprintf("parallel-%d", n)] = "sum over the batch: run -d processes + the containers' processes"
	}
	for _, k := range keys {
		m := b.data[k]
		if len(m) == 0 {
			continue
		}
		sr := scenarioReport{Key: k, Title: strings.TrimSpace(wallTitles[k]), WallMS: map[string]stats{}, CPUMS: map[string]stats{}, CPUWhat: cpuWhat[k]}
		for name, s := range m {
			if st, ok := summarize(s.wall); ok {
				sr.WallMS[name] = st
			}
			if st, ok := summarize(s.cpu); ok {
				sr.CPUMS[name] = st
			}
		}
		sr.Ratios = b.ratios(func(n string) (float64, bool) { st, ok := sr.WallMS[n]; return st.Median, ok })
		sr.CPURatios = b.ratios(func(n string) (float64, bool) { st, ok := sr.CPUMS[n]; return st.Median, ok })
		rep.Scenarios = append(rep.Scenarios, sr)
	}
	if len(b.mem) > 0 {
		mr := &memoryReport{Source: filepath.Base(b.memSource), PeakKiB: map[string]stats{}, CurrentKiB: map[string]stats{}}
		for name, samples := range b.mem {
			var peak, cur []float64
			for _, s := range samples {
				peak = append(peak, float64(s.peak)/1024)
				cur = append(cur, float64(s.current)/1024)
			}
			mr.PeakKiB[name], _ = summarize(peak)
			mr.CurrentKiB[name], _ = summarize(cur)
		}
		mr.Ratios = b.ratios(func(n string) (float64, bool) { st, ok := mr.PeakKiB[n]; return st.Median, ok })
		rep.Memory = mr
	}
}

func ratioCell(m map[string]float64, key string) string {
	if v, ok := m[key]; ok {
		return fmt.Sprintf("%.2f", v)
	}
	return ""
}

// printReport writes the tables.
func (b *bench) printReport(w io.Writer, rep *report) {
	_, wallTitles, cpuTitles := b.keys()
	others := []string{}
	for _, r := range b.rts {
		if r.Name != "hull" {
			others = append(others, r.Name)
		}
	}
	head := func(title, unit string) {
		fmt.Fprintf(w, "\n%-34s %-13s %4s %9s %9s", title, "runtime", "n", "median", "p95")
		for _, o := range others {
			fmt.Fprintf(w, " %9s", "hull/"+o)
		}
		fmt.Fprintf(w, "   (%s)\n", unit)
	}
	row := func(title, rt string, st stats, ratios map[string]float64, format string) {
		fmt.Fprintf(w, "%-34s %-13s %4d "+format+" "+format, title, rt, st.N, st.Median, st.P95)
		if rt == "hull-runtime" {
			for _, o := range others {
				fmt.Fprintf(w, " %9s", ratioCell(ratios, "hull/"+o))
			}
		}
		fmt.Fprintln(w)
	}
	display := func(name string) string {
		if name == "hull" {
			return "hull-runtime"
		}
		return name
	}

	fmt.Fprintf(w, "\nhull bench  %s  kernel %s  %d CPUs  cgroups in the bench namespace: %s\n", rep.Date, rep.Kernel, rep.CPUs, rep.Cgroups)
	head("wall time", "ms")
	for _, sr := range rep.Scenarios {
		title := wallTitles[sr.Key]
		for _, r := range b.rts {
			if st, ok := sr.WallMS[r.Name]; ok {
				row(title, display(r.Name), st, sr.Ratios, "%9.2f")
				title = ""
			}
		}
	}
	head("CPU time, user+sys", "ms")
	for _, sr := range rep.Scenarios {
		title := cpuTitles[sr.Key]
		for _, r := range b.rts {
			if st, ok := sr.CPUMS[r.Name]; ok {
				row(title, display(r.Name), st, sr.CPURatios, "%9.2f")
				title = ""
			}
		}
	}
	if m := rep.Memory; m != nil {
		fmt.Fprintf(w, "\n%-34s %-13s %4s %9s %9s", "memory charged to container cgroup", "runtime", "n", "peak med", "peak max")
		for _, o := range others {
			fmt.Fprintf(w, " %9s", "hull/"+o)
		}
		fmt.Fprintf(w, " %9s   (KiB)\n", "current")
		title := "create+start, sleep 30"
		for _, r := range b.rts {
			st, ok := m.PeakKiB[r.Name]
			if !ok {
				continue
			}
			fmt.Fprintf(w, "%-34s %-13s %4d %9.0f %9.0f", title, display(r.Name), st.N, st.Median, st.Max)
			for _, o := range others {
				cell := ""
				if r.Name == "hull" {
					cell = ratioCell(m.Ratios, "hull/"+o)
				}
				fmt.Fprintf(w, " %9s", cell)
			}
			fmt.Fprintf(w, " %9.0f\n", m.CurrentKiB[r.Name].Median)
			title = ""
		}
		fmt.Fprintf(w, "(peak: %s of the container's cgroup, read after start; current: the usage then;\n"+
			" coarse: the kernel charges memory cgroups in per-CPU batches of up to 64 pages, 256 KiB)\n", m.Source)
	}
	fmt.Fprintf(w, "\n%-34s %-13s %10s  %-18s %s\n", "binary", "runtime", "size KiB", "linking", "version")
	for _, r := range b.rts {
		fmt.Fprintf(w, "%-34s %-13s %10d  %-18s %s\n", r.Path, display(r.Name), r.Size/1024, r.Linking, r.Version)
	}
	fmt.Fprintln(w)
	for _, n := range rep.Notes {
		fmt.Fprintln(w, "note:", n)
	}
	if rep.Interrupted {
		fmt.Fprintln(w, "INTERRUPTED: partial results")
	}
	if rep.Error != "" {
		fmt.Fprintln(w, "ERROR:", rep.Error)
	}
	if len(rep.Leftovers) == 0 {
		fmt.Fprintln(w, "left behind: nothing (containers, cgroups)")
	} else {
		fmt.Fprintln(w, "LEFT BEHIND:", strings.Join(rep.Leftovers, "; "))
	}
	fmt.Fprintf(w, "load average at start / end: %s / %s; duration %.0f s\n", rep.LoadAvg[0], rep.LoadAvg[1], rep.DurationS)
	fmt.Fprintf(w, "command: %s\n", rep.Command)
	fmt.Fprintf(w, "settings: runs=%d warmup=%d par=%v par-runs=%d mem-runs=%d tmpfs=%v; round-robin, rotating order; %s\n",
		b.cfg.runs, b.cfg.warmup, b.cfg.par, b.cfg.parRuns, b.cfg.memRuns, b.cfg.tmpfs, rep.Settings["wrapper"])
	fmt.Fprintf(w, "date: %s  kernel: %s  cpu: %s\n", rep.Date, rep.Kernel, rep.CPUModel)
}

func writeJSON(path string, rep *report) error {
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}
