package gitlabsync

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitlab-bigquery-sync/gitlabsync/gitlab"
	"github.com/gitlab-bigquery-sync/gitlabsync/gitlab/gitlabtest"
	"github.com/gitlab-bigquery-sync/gitlabsync/internal/testenv"
	"github.com/gitlab-bigquery-sync/gitlabsync/load"
	"github.com/gitlab-bigquery-sync/gitlabsync/state"
	"github.com/gitlab-bigquery-sync/gitlabsync/table"
)

// countingDest counts rows and keeps none, to measure the read side alone.
type countingDest struct{ rows atomic.Int64 }

func (d *countingDest) Prepare(context.Context, []table.Def) error { return nil }
func (d *countingDest) Upsert(_ context.Context, _ table.Def, _ string, rows []table.Row) error {
	d.rows.Add(int64(len(rows)))
	return nil
}

// heapPeak samples the live heap (as marked by the last collection) every
// few milliseconds until stopped, with the collector run often (GOGC=10) so
// that the samples follow the run closely. It reports the peak above the live
// heap at its start, which holds the simulator's data: what the run itself
// kept alive at its busiest.
type heapPeak struct {
	base uint64
	peak atomic.Uint64
	stop chan struct{}
	done sync.WaitGroup
	gogc int
}

func startHeapPeak() *heapPeak {
	h := &heapPeak{stop: make(chan struct{}), gogc: debug.SetGCPercent(10)}
	runtime.GC()
	base := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(base)
	h.base = base[0].Value.Uint64()
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	h.done.Add(1)
	go func() {
		defer h.done.Done()
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(sample)
			if v := sample[0].Value.Uint64(); v > h.peak.Load() {
				h.peak.Store(v)
			}
			select {
			case <-h.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return h
}

func (h *heapPeak) Stop() uint64 {
	close(h.stop)
	h.done.Wait()
	debug.SetGCPercent(h.gogc)
	return h.peak.Load() - min(h.base, h.peak.Load())
}

// BenchmarkSync syncs one project of n generated merge requests from the
// GitLab simulator (a full first sync: projects, merge requests, users) and
// reports rows per second, API requests per 100 rows and the peak heap the
// run added on top of what was live before it.
//
// dest=discard measures the read side and the loop (memory must not grow
// with n); dest=bigquery writes through the in-process BigQuery emulator and
// the Firestore emulator, whose own memory is in the same process and so in
// the peak.
func BenchmarkSync(b *testing.B) {
	for _, c := range []struct {
		dest string
		n    int
	}{
		{"discard", 5000},
		{"discard", 20000},
		{"discard", 80000},
		{"bigquery", 20000},
	} {
		b.Run(fmt.Sprintf("dest=%s/mrs=%d", c.dest, c.n), func(b *testing.B) {
			// RateLimit -1: no RateLimit-* headers, so the GitLab client does not
			// pace itself to gitlab.com's 2,000 requests a minute and the figure
			// is the sync's own cost.
			sim := gitlabtest.NewServer(gitlabtest.Options{Token: testToken, RateLimit: -1})
			defer sim.Close()
			const pid = 4242
			sim.GenerateMergeRequests(pid, c.n, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), time.Minute)

			var rows, requests int64
			var peak uint64
			var elapsed time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				cfg := Config{
					Projects: []string{fmt.Sprint(pid)}, SyncProjects: true, SyncMergeRequests: true, SyncUsers: true,
					MaxRunTime: time.Hour, ConnectionID: "bench", StateCollection: testenv.UniqueName(b, "bench"),
				}
				src, err := gitlab.NewClient(gitlab.Options{BaseURL: sim.URL(), Token: testToken})
				if err != nil {
					b.Fatal(err)
				}
				e := &Engine{Config: cfg, Source: src}
				switch c.dest {
				case "discard":
					e.Dest = &countingDest{}
					e.Store = state.NewFileStore(filepath.Join(b.TempDir(), "state.json"))
				case "bigquery":
					bq := testenv.MustBigQuery(b)
					e.Dest = load.NewBigQuery(bq.Client, "gitlab", "US")
					e.Store = state.NewFirestoreStore(testenv.Firestore(b), cfg.StateCollection, cfg.ConnectionID)
				}
				h := startHeapPeak()
				start := time.Now()
				b.StartTimer()

				sum, err := e.Run(context.Background(), Request{})

				b.StopTimer()
				elapsed += time.Since(start)
				peak = max(peak, h.Stop())
				if err != nil || sum.Status != StatusOK {
					b.Fatalf("run: %v %+v", err, sum)
				}
				if got := sum.table(b, "merge_requests").RowsWritten; got != int64(c.n) {
					b.Fatalf("wrote %d merge requests, want %d", got, c.n)
				}
				rows += sum.RowsWritten
				requests += sum.Requests
			}
			b.ReportMetric(float64(rows)/elapsed.Seconds(), "rows/s")
			b.ReportMetric(float64(requests)*100/float64(rows), "requests/100rows")
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		})
	}
}
