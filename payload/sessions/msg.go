package sessions

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
)

// Message is what workers and the master tell each other in master mode
// (cluster user messages, JSON):
//
//	{"op":"add","tok":…,"name":…,"exp":…,"t":…}   a worker issued a token
//	{"op":"del","tok":…,"t":…}                     a worker revoked one
//	{"op":"snap","data":"tok\tname\texp\n…","t":…,"last":true,"total":N}
//	                                               the master's state, in chunks, to a new worker
//
// A snapshot chunk carries its entries as one string, a line per token
// (token, name and expiry separated by tabs: neither a token nor a name
// holds a control character), so that a 10,000-token hand-over is a few
// strings to split, not 30,000 JSON values to decode.
//
// t is when the event happened (unix ns, the host's clock): the receiving
// worker measures propagation as its clock minus t.
type Message struct {
	Op    string
	Tok   string
	Name  string
	Exp   int64
	T     int64
	Snap  []Entry
	Last  bool
	Total int
}

type wireMsg struct {
	Op    string `json:"op"`
	Tok   string `json:"tok,omitempty"`
	Name  string `json:"name,omitempty"`
	Exp   int64  `json:"exp,omitempty"`
	T     int64  `json:"t"`
	Data  string `json:"data,omitempty"`
	Last  bool   `json:"last,omitempty"`
	Total int    `json:"total,omitempty"`
}

// snapChunk is the most entries one snapshot message carries; the hub also
// keeps each message under snapBytes (a cluster message is at most 64 KiB;
// an entry's JSON is at most ~450 bytes, a name of 64 '<' escaped).
const (
	snapChunk = 1000
	snapBytes = 48 << 10
)

// wire is m's wire form. The hub and the workers send it (a plain struct:
// encoding/json writes it in one pass, where a MarshalJSON method's output
// would be validated and compacted again).
func (m Message) wire() wireMsg {
	w := wireMsg{Op: m.Op, Tok: m.Tok, Name: m.Name, Exp: m.Exp, T: m.T, Last: m.Last, Total: m.Total}
	if len(m.Snap) > 0 {
		n := 0
		for _, e := range m.Snap {
			n += len(e.Token) + len(e.Name) + 22
		}
		b := make([]byte, 0, n)
		for _, e := range m.Snap {
			b = append(b, e.Token...)
			b = append(b, '\t')
			b = append(b, e.Name...)
			b = append(b, '\t')
			b = strconv.AppendInt(b, e.Exp, 10)
			b = append(b, '\n')
		}
		w.Data = string(b)
	}
	return w
}

// MarshalJSON writes the wire form.
func (m Message) MarshalJSON() ([]byte, error) { return json.Marshal(m.wire()) }

var errBadMsg = errors.New("sessions: malformed message")

// ParseMessage reads a message from a worker or the master; it is not
// trusted: every token and name is checked, a snapshot holds at most
// snapChunk entries.
func ParseMessage(b []byte) (Message, error) {
	var w wireMsg
	if len(b) > 64<<10 || json.Unmarshal(b, &w) != nil {
		return Message{}, errBadMsg
	}
	m := Message{Op: w.Op, Tok: w.Tok, Name: w.Name, Exp: w.Exp, T: w.T, Last: w.Last, Total: w.Total}
	switch w.Op {
	case "add":
		if !validToken(w.Tok) || !ValidName(w.Name) || w.Data != "" {
			return Message{}, errBadMsg
		}
	case "del":
		if !validToken(w.Tok) || w.Data != "" {
			return Message{}, errBadMsg
		}
	case "snap":
		if w.Tok != "" {
			return Message{}, errBadMsg
		}
		n := strings.Count(w.Data, "\n")
		if n > snapChunk || w.Data != "" && !strings.HasSuffix(w.Data, "\n") {
			return Message{}, errBadMsg
		}
		m.Snap = make([]Entry, 0, n)
		for rest := w.Data; rest != ""; {
			line, tail, _ := strings.Cut(rest, "\n")
			rest = tail
			tok, r, ok1 := strings.Cut(line, "\t")
			name, exps, ok2 := strings.Cut(r, "\t")
			exp, err := strconv.ParseInt(exps, 10, 64)
			if !ok1 || !ok2 || err != nil || !validToken(tok) || !ValidName(name) {
				return Message{}, errBadMsg
			}
			m.Snap = append(m.Snap, Entry{Token: tok, Name: name, Exp: exp})
		}
	default:
		return Message{}, errBadMsg
	}
	return m, nil
}

// validToken: what ParseBearer accepts, without building a header.
func validToken(t string) bool {
	if t == "" || len(t) > MaxToken {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
