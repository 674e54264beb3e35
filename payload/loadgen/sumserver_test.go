package loadgen

import (
	"net/http/httptest"
	"testing"

	"github.com/deploylab/deploylab/payload/sumserver"
)

// TestRunAgainstSumserver load-tests the practice's app (package sumserver,
// parallel mode) on both of its routes: every request answered, no errors.
func TestRunAgainstSumserver(t *testing.T) {
	srv := httptest.NewServer(sumserver.NewHandler(sumserver.Options{Mode: sumserver.Parallel}))
	defer srv.Close()
	for _, tc := range []struct {
		path      string
		keepAlive bool
	}{{"/", true}, {"/", false}, {"/api/500000", true}} {
		res, err := run(t, Options{URL: srv.URL + tc.path, Requests: 500, Concurrency: 20, KeepAlive: tc.keepAlive})
		if err != nil {
			t.Fatal(err)
		}
		if res.OK != 500 || res.StatusCodes[200] != 500 || res.Errors.Total != 0 {
			t.Errorf("%s keep-alive %v: ok %d codes %v errors %+v %v", tc.path, tc.keepAlive, res.OK, res.StatusCodes, res.Errors, res.ErrorSamples)
		}
	}
}
