// Package deploynames lists the ravel metrics that deploy/'s dashboard and alert rules name,
// for the tests that check each one exists.
package deploynames

import (
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// Recorder is a prometheus.Registerer that only keeps the names of what is registered with
// it: the metrics a constructor registers, vectors without a series included (a scrape shows
// only those with one).
type Recorder struct{ Names map[string]bool }

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return &Recorder{Names: map[string]bool{}} }

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

// Register records c's metric names.
func (r *Recorder) Register(c prometheus.Collector) error {
	descs := make(chan *prometheus.Desc, 16)
	go func() { c.Describe(descs); close(descs) }()
	for d := range descs {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			r.Names[m[1]] = true
		}
	}
	return nil
}

// MustRegister records every collector's names.
func (r *Recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = r.Register(c)
	}
}

// Unregister does nothing.
func (r *Recorder) Unregister(prometheus.Collector) bool { return false }

// Files are the files under deploy/ that name metrics.
var Files = []string{"prometheus/alerts.yaml", "grafana/ravel.json"}

var metricName = regexp.MustCompile(`\bravel_[a-z0-9_]+`)

// Referenced returns the metric names that the files under deployDir name, sorted and unique;
// a histogram's _bucket, _sum and _count series count as the histogram.
func Referenced(deployDir string) ([]string, error) {
	var out []string
	for _, f := range Files {
		data, err := os.ReadFile(filepath.Join(deployDir, f))
		if err != nil {
			return nil, err
		}
		for _, n := range metricName.FindAllString(string(data), -1) {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				n = strings.TrimSuffix(n, suffix)
			}
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}
