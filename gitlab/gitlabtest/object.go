package gitlabtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// object is a JSON object kept in its recorded form: the keys in their recorded order and
// each value as its recorded bytes (compacted). A mutation replaces only the values it
// changes, so a served body reads like the recording it came from, nulls and all.
type object struct {
	keys []string
	vals []json.RawMessage
}

// parseObject reads one JSON object, keeping key order and raw values.
func parseObject(data []byte) (*object, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, data); err != nil {
		return nil, fmt.Errorf("compact json: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(buf.Bytes()))
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("read object: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("read object: not a JSON object")
	}
	o := &object{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("read object key: %w", err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("read object key: got %v", tok)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("read value of %q: %w", key, err)
		}
		o.keys = append(o.keys, key)
		o.vals = append(o.vals, v)
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("read object end: %w", err)
	}
	return o, nil
}

// parseObjects reads a JSON array of objects.
func parseObjects(data []byte) ([]*object, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(data, &items); err != nil {
		return nil, fmt.Errorf("read array: %w", err)
	}
	objs := make([]*object, 0, len(items))
	for i, item := range items {
		o, err := parseObject(item)
		if err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
		objs = append(objs, o)
	}
	return objs, nil
}

// objectFromMap converts a caller's map. Its keys come out sorted, as encoding/json writes
// them.
func objectFromMap(m map[string]any) (*object, error) {
	b, err := marshalValue(m)
	if err != nil {
		return nil, err
	}
	return parseObject(b)
}

// marshalValue encodes v the way GitLab writes JSON: compact, without HTML escaping.
func marshalValue(v any) (json.RawMessage, error) {
	if raw, ok := v.(json.RawMessage); ok {
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			return nil, fmt.Errorf("compact json: %w", err)
		}
		return buf.Bytes(), nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode json: %w", err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// mustMarshal is marshalValue for values that always encode (strings, numbers, raw objects).
func mustMarshal(v any) json.RawMessage {
	b, err := marshalValue(v)
	if err != nil {
		panic("gitlabtest: " + err.Error())
	}
	return b
}

// jsonString encodes s as a JSON string, quickly when it needs no escaping.
func jsonString(s string) json.RawMessage {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x7f {
			return mustMarshal(s)
		}
	}
	b := make([]byte, 0, len(s)+2)
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// clone returns a copy whose key and value slices can be changed independently. The value
// bytes are shared: they are never modified in place.
func (o *object) clone() *object {
	return &object{
		keys: append([]string(nil), o.keys...),
		vals: append([]json.RawMessage(nil), o.vals...),
	}
}

func (o *object) index(key string) int {
	for i, k := range o.keys {
		if k == key {
			return i
		}
	}
	return -1
}

// get returns the raw value of key.
func (o *object) get(key string) (json.RawMessage, bool) {
	if i := o.index(key); i >= 0 {
		return o.vals[i], true
	}
	return nil, false
}

// has reports whether key is present (even with a null value).
func (o *object) has(key string) bool { return o.index(key) >= 0 }

// set replaces the value of key in place, or appends key at the end.
func (o *object) set(key string, raw json.RawMessage) {
	if i := o.index(key); i >= 0 {
		o.vals[i] = raw
		return
	}
	o.keys = append(o.keys, key)
	o.vals = append(o.vals, raw)
}

// del removes key if present.
func (o *object) del(key string) {
	if i := o.index(key); i >= 0 {
		o.keys = append(o.keys[:i], o.keys[i+1:]...)
		o.vals = append(o.vals[:i], o.vals[i+1:]...)
	}
}

// str returns the string value of key, or "" if absent, null or not a string.
func (o *object) str(key string) string {
	raw, ok := o.get(key)
	if !ok || len(raw) == 0 || raw[0] != '"' {
		return ""
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return ""
	}
	return s
}

// int returns the integer value of key, or 0 if absent or not an integer.
func (o *object) int(key string) int64 {
	raw, ok := o.get(key)
	if !ok {
		return 0
	}
	return rawInt(raw)
}

// rawInt reads an integer written as a JSON number (possibly as a float such as 5.0).
func rawInt(raw json.RawMessage) int64 {
	if n, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
		return n
	}
	if f, err := strconv.ParseFloat(string(raw), 64); err == nil {
		return int64(f)
	}
	return 0
}

// time returns the instant in key, or the zero time.
func (o *object) time(key string) time.Time {
	t, err := parseTime(o.str(key))
	if err != nil {
		return time.Time{}
	}
	return t
}

// sub returns the nested object in key, or nil if absent, null or not an object.
func (o *object) sub(key string) *object {
	raw, ok := o.get(key)
	if !ok || len(raw) == 0 || raw[0] != '{' {
		return nil
	}
	s, err := parseObject(raw)
	if err != nil {
		return nil
	}
	return s
}

// bytes encodes the object compactly, keys in order.
func (o *object) bytes() []byte {
	n := 2
	for i := range o.keys {
		n += len(o.keys[i]) + 4 + len(o.vals[i])
	}
	b := make([]byte, 0, n)
	b = append(b, '{')
	for i, k := range o.keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendKey(b, k)
		b = append(b, ':')
		b = append(b, o.vals[i]...)
	}
	return append(b, '}')
}

// pick returns the subset of the object with the given keys, in the object's order.
func (o *object) pick(keys ...string) *object {
	s := &object{}
	for i, k := range o.keys {
		if slices.Contains(keys, k) {
			s.keys = append(s.keys, k)
			s.vals = append(s.vals, o.vals[i])
		}
	}
	return s
}

// without encodes the object minus the given keys; it returns nil if none of them is present.
func (o *object) without(drop map[string]bool) []byte {
	if !slices.ContainsFunc(o.keys, func(k string) bool { return drop[k] }) {
		return nil
	}
	s := &object{}
	for i, k := range o.keys {
		if !drop[k] {
			s.keys = append(s.keys, k)
			s.vals = append(s.vals, o.vals[i])
		}
	}
	if len(s.keys) == len(o.keys) {
		return nil
	}
	return s.bytes()
}

func appendKey(b []byte, k string) []byte {
	for i := 0; i < len(k); i++ {
		if c := k[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x7f {
			return append(b, jsonString(k)...)
		}
	}
	b = append(b, '"')
	b = append(b, k...)
	return append(b, '"')
}

// parseTime reads the timestamps GitLab writes and accepts in query strings: RFC 3339 with
// or without fractional seconds and with any offset (with or without its colon), a
// date-time without offset (taken as UTC) or a date.
func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{
		time.RFC3339Nano,
		"2006-01-02T15:04:05.999999999Z0700",
		"2006-01-02T15:04:05.999999999",
		"2006-01-02 15:04:05.999999999Z07:00",
		"2006-01-02",
	} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("parse time %q: not RFC 3339", s)
}
