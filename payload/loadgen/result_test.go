package loadgen

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/deploylab/deploylab/internal/golden"
	"github.com/google/go-cmp/cmp"
)

// sampleResults are fixed results covering every field of the schema.
func sampleResults() map[string]*Result {
	started := time.Date(2026, 11, 22, 10, 22, 33, 123456000, time.UTC)
	return map[string]*Result{
		"keepalive": {
			Schema: Schema, Tool: Tool{Name: "loadgen", Version: "0.1.0"},
			URL: "http://localhost:3000/api/500000", Method: "GET",
			Requests: 10000, Concurrency: 100, KeepAlive: true,
			Started: started, DurationS: 2.952113,
			Completed: 10000, OK: 10000, RPS: 3387.41,
			Latency: &Latency{Mean: 28712.4, P50: 28031, P90: 40127, P95: 44063, P99: 59007,
				P999: Ptr(80191), Max: 85112, Min: Ptr(1875), StdDev: Ptr(7321.9)},
			StatusCodes:         map[int]int64{200: 10000},
			LatencyResolutionUS: 1,
		},
		"errors": {
			Schema: Schema, Tool: Tool{Name: "loadgen", Version: "0.1.0"},
			URL: "http://localhost:3000/api/5000000000", Method: "GET",
			Concurrency: 4, RPSTarget: 20, TimeLimitS: 10,
			Started: started, DurationS: 10.000412,
			Completed: 131, OK: 96, RPS: 13.1,
			Errors: Errors{Total: 35, Connect: 20, Timeout: 10, Read: 2, Status: 3},
			Latency: &Latency{Mean: 4512034.5, P50: 4718591, P90: 9437183, P95: 9961471, P99: 10338303,
				P999: Ptr(10411204), Max: 10411204, Min: Ptr(5012873), StdDev: Ptr(2561234.2)},
			StatusCodes:                  map[int]int64{200: 96, 500: 3},
			LatencyResolutionUS:          1,
			CoordinatedOmissionCorrected: true,
			ErrorSamples: map[string]string{
				"connect": "dial tcp 127.0.0.1:3000: connect: connection refused",
				"timeout": "read tcp 127.0.0.1:41234->127.0.0.1:3000: i/o timeout",
				"read":    "unexpected EOF",
			},
			Interrupted: true,
			Notes:       []string{"concurrency 10 reduced to 4, the number of requests"},
		},
		"unreachable": {
			Schema: Schema, Tool: Tool{Name: "loadgen", Version: "0.1.0"},
			URL: "http://127.0.0.1:1/", Method: "GET",
			Requests: 10, Concurrency: 10,
			Started: started, DurationS: 0.000798,
			Completed: 10, RPS: 12531.33,
			Errors:              Errors{Total: 10, Connect: 10},
			StatusCodes:         map[int]int64{},
			LatencyResolutionUS: 1,
			ErrorSamples:        map[string]string{"connect": "dial tcp 127.0.0.1:1: connect: connection refused"},
		},
	}
}

// TestResultJSONSchema pins the JSON document: field names, order, which
// fields are omitted when unknown. A change here is a schema change.
func TestResultJSONSchema(t *testing.T) {
	for name, r := range sampleResults() {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteJSON(&b, r); err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", "result-"+name+".golden.json"), b.Bytes())
			var back Result
			if err := json.Unmarshal(b.Bytes(), &back); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(r, &back); diff != "" {
				t.Errorf("JSON round trip (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWriteText(t *testing.T) {
	for name, r := range sampleResults() {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteText(&b, r); err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", "summary-"+name+".golden.txt"), b.Bytes())
		})
	}
}
