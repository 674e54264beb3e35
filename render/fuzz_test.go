package render

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"testing"

	"github.com/deploylab/deploylab/bench"
)

// FuzzBenchReport: stored results are read from files a VM's figures went
// into; whatever they hold, the report is built without a panic and every
// chart stays well-formed SVG.
func FuzzBenchReport(f *testing.F) {
	seed, err := json.Marshal(compareRuns())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(`[{"schema":"deploylab.bench/v1","host":{"name":"<x>"},"scenario":{"name":"b","kind":"blocking","delay":"1s"},"server":{"mode":"cluster"},"result":{"completed":2,"each":[{"start_us":-5,"latency_us":-1,"error":"\u001b[31m"}],"latency_us":{"max":1e300}},"heavy":{"latency_us":{"max":-3}}}]`))
	f.Add([]byte(`[{"scenario":{"name":"l","kind":"load"},"server":{"mode":"single"},"result":{"rps":1e308,"timeline":{"interval_s":1e-300,"completed":[9223372036854775807,-4],"errors":[]}}}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var runs []*bench.Record
		if json.Unmarshal(data, &runs) != nil {
			return
		}
		var ok []*bench.Record
		for _, r := range runs {
			if r != nil && r.Result != nil && len(ok) < 64 {
				ok = append(ok, r)
			}
		}
		rep := BuildBench(ok, BenchOptions{})
		if err := rep.WriteHTML(io.Discard); err != nil {
			t.Fatal(err)
		}
		for _, c := range rep.Charts {
			d := xml.NewDecoder(bytes.NewReader([]byte(c.SVG)))
			for {
				_, err := d.Token()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("%s: %v\n%s", c.Name, err, c.SVG)
				}
			}
		}
	})
}
