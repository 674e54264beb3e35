package sessions

import (
	"encoding/json"
	"errors"
)

// Message is what workers and the master tell each other in master mode
// (cluster user messages, JSON):
//
//	{"op":"add","tok":…,"name":…,"exp":…,"t":…}   a worker issued a token
//	{"op":"del","tok":…,"t":…}                     a worker revoked one
//	{"op":"snap","toks":[…],"names":[…],"exps":[…],"t":…,"last":true,"total":N}
//	                                               the master's state, in chunks, to a new worker
//
// t is when the event happened (unix ns, the host's clock): the receiving
// worker measures propagation as its clock minus t.
type Message struct {
	Op    string  `json:"op"`
	Tok   string  `json:"tok,omitempty"`
	Name  string  `json:"name,omitempty"`
	Exp   int64   `json:"exp,omitempty"`
	T     int64   `json:"t"`
	Snap  []Entry `json:"-"`
	Last  bool    `json:"last,omitempty"`
	Total int     `json:"total,omitempty"`
}

type wireMsg struct {
	Op    string   `json:"op"`
	Tok   string   `json:"tok,omitempty"`
	Name  string   `json:"name,omitempty"`
	Exp   int64    `json:"exp,omitempty"`
	T     int64    `json:"t"`
	Toks  []string `json:"toks,omitempty"`
	Names []string `json:"names,omitempty"`
	Exps  []int64  `json:"exps,omitempty"`
	Last  bool     `json:"last,omitempty"`
	Total int      `json:"total,omitempty"`
}

// snapChunk is the most entries one snapshot message carries; the hub also
// keeps each message under snapBytes (a cluster message is at most 64 KiB;
// an entry's JSON is at most ~450 bytes, a name of 64 '<' escaped).
const (
	snapChunk = 1000
	snapBytes = 48 << 10
)

// MarshalJSON writes the wire form.
func (m Message) MarshalJSON() ([]byte, error) {
	w := wireMsg{Op: m.Op, Tok: m.Tok, Name: m.Name, Exp: m.Exp, T: m.T, Last: m.Last, Total: m.Total}
	for _, e := range m.Snap {
		w.Toks = append(w.Toks, e.Token)
		w.Names = append(w.Names, e.Name)
		w.Exps = append(w.Exps, e.Exp)
	}
	return json.Marshal(w)
}

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
		if !validToken(w.Tok) || !ValidName(w.Name) || len(w.Toks)+len(w.Names)+len(w.Exps) > 0 {
			return Message{}, errBadMsg
		}
	case "del":
		if !validToken(w.Tok) || len(w.Toks)+len(w.Names)+len(w.Exps) > 0 {
			return Message{}, errBadMsg
		}
	case "snap":
		n := len(w.Toks)
		if n > snapChunk || len(w.Names) != n || len(w.Exps) != n || w.Tok != "" {
			return Message{}, errBadMsg
		}
		m.Snap = make([]Entry, n)
		for i := range n {
			if !validToken(w.Toks[i]) || !ValidName(w.Names[i]) {
				return Message{}, errBadMsg
			}
			m.Snap[i] = Entry{Token: w.Toks[i], Name: w.Names[i], Exp: w.Exps[i]}
		}
	default:
		return Message{}, errBadMsg
	}
	return m, nil
}

// validToken: what ParseBearer accepts.
func validToken(t string) bool {
	_, ok := ParseBearer("Bearer " + t)
	return ok && t != ""
}
