package loadgen

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestReadResponseMatchesNetHTTP checks the lean parser against net/http's
// http.ReadResponse, the reference: same status, same end of the response
// (the bytes after it are the next response), same keep-alive decision.
func TestReadResponseMatchesNetHTTP(t *testing.T) {
	const next = "HTTP/1.1 204 No Content\r\n\r\n"
	tests := []struct {
		name   string
		raw    string
		method string
	}{
		{"content-length", "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: 12\r\nETag: W/\"c-Lve95gjOVATpfV8EL5X4nxwjKHE\"\r\n\r\nHello World!", "GET"},
		{"lower-case headers", "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello", "GET"},
		{"no reason phrase", "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok", "GET"},
		{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", "GET"},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n", "GET"},
		{"chunked with trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n", "GET"},
		{"connection close", "HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\nContent-Length: 3\r\n\r\nerr", "GET"},
		{"not found", "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found", "GET"},
		{"http/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", "GET"},
		{"http/1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", "GET"},
		{"head", "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", "HEAD"},
		{"204", "HTTP/1.1 204 No Content\r\n\r\n", "GET"},
		{"304", "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n", "GET"},
		{"100 continue", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", "POST"},
		{"empty body", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "GET"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			br := bufio.NewReader(strings.NewReader(tc.raw + next))
			status, mustClose, err := readResponse(br, tc.method == "HEAD")
			if err != nil {
				t.Fatalf("readResponse: %v", err)
			}
			rest, _ := io.ReadAll(br)

			ref := bufio.NewReader(strings.NewReader(tc.raw + next))
			// http.ReadResponse returns interim 1xx answers one by one.
			var resp *http.Response
			for resp == nil || resp.StatusCode < 200 {
				resp, err = http.ReadResponse(ref, &http.Request{Method: tc.method})
				if err != nil {
					t.Fatalf("http.ReadResponse: %v", err)
				}
			}
			if _, err := io.Copy(io.Discard, resp.Body); err != nil {
				t.Fatalf("reference body: %v", err)
			}
			resp.Body.Close()
			refRest, _ := io.ReadAll(ref)

			if status != resp.StatusCode {
				t.Errorf("status %d, net/http %d", status, resp.StatusCode)
			}
			if mustClose != resp.Close {
				t.Errorf("mustClose %v, net/http Close %v", mustClose, resp.Close)
			}
			if string(rest) != string(refRest) || string(rest) != next {
				t.Errorf("left %q, net/http left %q, want %q", rest, refRest, next)
			}
		})
	}
}

func TestReadResponseBodyToEOF(t *testing.T) {
	br := bufio.NewReader(strings.NewReader("HTTP/1.1 200 OK\r\n\r\nbody until the end"))
	status, mustClose, err := readResponse(br, false)
	if err != nil || status != 200 || !mustClose {
		t.Fatalf("got %d %v %v, want 200 true nil", status, mustClose, err)
	}
	if n, _ := io.Copy(io.Discard, br); n != 0 {
		t.Errorf("%d bytes left, want all read", n)
	}
}

func TestReadResponseErrors(t *testing.T) {
	tests := []struct {
		name     string
		raw      string
		protocol bool // a protocol error, else an early end
	}{
		{"empty", "", false},
		{"garbage", "SSH-2.0-OpenSSH_9.2\r\n", true},
		{"bad code", "HTTP/1.1 2x0 OK\r\n\r\n", true},
		{"short status line", "HTTP/1.1 20\r\n\r\n", true},
		{"bad header", "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", true},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n", true},
		{"conflicting lengths", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", true},
		{"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", true},
		{"cut in headers", "HTTP/1.1 200 OK\r\nContent-Len", false},
		{"cut in body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", false},
		{"cut in chunks", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", false},
		{"line too long", "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", 2*readBufferSize) + "\r\n\r\n", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			br := bufio.NewReaderSize(strings.NewReader(tc.raw), readBufferSize)
			_, _, err := readResponse(br, false)
			if err == nil {
				t.Fatal("no error")
			}
			if got := errors.Is(err, errProtocol); got != tc.protocol {
				t.Errorf("protocol error %v, want %v (%v)", got, tc.protocol, err)
			}
			if !tc.protocol && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("error %v, want an EOF", err)
			}
		})
	}
}

func TestReadResponseAllocatesNothing(t *testing.T) {
	raw := "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: 12\r\n\r\nHello World!"
	sr := strings.NewReader(raw)
	br := bufio.NewReaderSize(sr, readBufferSize)
	allocs := testing.AllocsPerRun(1000, func() {
		sr.Reset(raw)
		br.Reset(sr)
		if _, _, err := readResponse(br, false); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per response, want 0", allocs)
	}
}
