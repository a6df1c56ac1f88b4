package modelio

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/secondorder/prune/internal/atomicfile"
	"github.com/secondorder/prune/nn"
)

// Format is the format identifier of the toolkit's own model files, read by
// ReadJSON and written by WriteJSON (and by Load and Save for .json).
//
// A prune-mlp/1 file is a JSON object:
//
//	{
//	  "format": "prune-mlp/1",
//	  "loss": "mse",
//	  "layers": [
//	    {
//	      "in": 2,
//	      "out": 3,
//	      "activation": "tanh",
//	      "weight": [[w00, w01], [w10, w11], [w20, w21]],
//	      "bias": [b0, b1, b2],
//	      "weight_mask": [[1, 0], [1, 1], [0, 1]],
//	      "bias_mask": [1, 1, 0]
//	    },
//	    …
//	  ],
//	  "meta": {…}
//	}
//
// The loss is mse, bce or ce and each activation tanh, sigmoid, relu, linear
// or softmax, as accepted by New. Layer l's weight holds W_l as out rows of in
// numbers and its bias out numbers; layer l's in must equal layer l−1's out.
// Parameters are written in the shortest decimal form that reads back to the
// same float64, so values, including −0 and subnormals, survive a round trip
// bit for bit. NaN and ±Inf cannot be stored.
//
// The masks are optional, and hold 1 for a live parameter and 0 for a pruned
// one, which must be zero. An absent mask makes all the parameters it would
// cover live. WriteJSON emits both masks for every layer when some parameter of
// the network is pruned and no mask at all otherwise.
//
// The meta object is optional and free-form; it holds Network.Meta.
// Unknown fields are errors, so that a misspelt field is not silently ignored.
const Format = "prune-mlp/1"

// maxFileSize is the largest input Read accepts, in bytes.
var maxFileSize int64 = 1 << 30

// maxParams is the largest number of parameters Read accepts.
const maxParams = 1 << 30

var errTooLarge = errors.New("input too large")

// ReadJSON reads a network in the prune-mlp/1 format (see Format) from r.
//
// It checks the whole file and returns an error naming the offending field,
// such as "layers[0].weight[2][5]: NaN is not allowed", for input that is not
// a valid model. Numbers in the meta object are read as json.Number, so that
// they are kept exactly; an empty or null meta object gives a nil Meta.
// Inputs larger than 1 GiB are refused.
func ReadJSON(r io.Reader) (*nn.Network, error) {
	lr := &limitedReader{r: r, max: maxFileSize}
	dec := json.NewDecoder(lr)
	var doc json.RawMessage
	if err := dec.Decode(&doc); err != nil {
		return nil, decodeError(err, lr)
	}
	if err := duplicateKey(doc); err != nil {
		return nil, err
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(doc, &top); err != nil {
		return nil, decodeError(err, lr)
	}
	doc = nil // release the document; top holds its parts
	if top == nil {
		return nil, fmt.Errorf("not a %s JSON file: the top level is null, not an object", Format)
	}
	end := dec.InputOffset()
	var syn *json.SyntaxError
	switch _, err := dec.Token(); {
	case err == io.EOF:
	case err == nil || errors.As(err, &syn) || err == io.ErrUnexpectedEOF:
		return nil, fmt.Errorf("trailing data after the JSON object, which ends at byte offset %d", end)
	default:
		return nil, decodeError(err, lr)
	}
	return parse(top)
}

// duplicateKey returns an error naming the first object of the valid JSON
// document doc that holds a key twice, such as
// "layers[0]: key "weight" appears twice", which encoding/json would
// resolve silently by keeping the last. Its scan of doc is one pass over
// the bytes, with the keys of the open objects in memory.
func duplicateKey(doc []byte) error {
	type frame struct {
		obj  bool
		keys map[string]bool
		key  string // the last key of an object
		idx  int    // the index of the current element of an array
	}
	var stack []frame
	path := func() string {
		var b strings.Builder
		for i, f := range stack {
			if i == len(stack)-1 {
				break
			}
			if f.obj {
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.WriteString(f.key)
			} else {
				fmt.Fprintf(&b, "[%d]", f.idx)
			}
		}
		return b.String()
	}
	expectKey := false
	for i := 0; i < len(doc); i++ {
		switch c := doc[i]; c {
		case '{':
			stack = append(stack, frame{obj: true})
			expectKey = true
		case '[':
			stack = append(stack, frame{})
			expectKey = false
		case '}', ']':
			stack = stack[:len(stack)-1]
			expectKey = false
		case ',':
			top := &stack[len(stack)-1]
			if top.obj {
				expectKey = true
			} else {
				top.idx++
			}
		case ':':
			expectKey = false
		case '"':
			start := i
			escaped := false
			for i++; doc[i] != '"'; i++ {
				if doc[i] == '\\' {
					escaped = true
					i++
				}
			}
			if !expectKey {
				continue
			}
			key := string(doc[start+1 : i])
			if escaped {
				if err := json.Unmarshal(doc[start:i+1], &key); err != nil {
					return fmt.Errorf("not a %s JSON file: key at byte offset %d: %v", Format, start, err)
				}
			}
			top := &stack[len(stack)-1]
			if top.keys == nil {
				top.keys = make(map[string]bool)
			}
			if top.keys[key] {
				where := path()
				if where == "" {
					return fmt.Errorf("key %q appears twice at the top level; a %s file holds each key once", key, Format)
				}
				return fmt.Errorf("%s: key %q appears twice; a %s file holds each key once", where, key, Format)
			}
			top.keys[key] = true
			top.key = key
		}
	}
	return nil
}

// limitedReader reads from r and fails with errTooLarge once more than max
// bytes have been read.
type limitedReader struct {
	r   io.Reader
	n   int64 // bytes read so far
	max int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n > l.max {
		return 0, errTooLarge
	}
	if rest := l.max + 1 - l.n; int64(len(p)) > rest {
		p = p[:rest]
	}
	k, err := l.r.Read(p)
	l.n += int64(k)
	if l.n > l.max {
		return k, errTooLarge
	}
	return k, err
}

func decodeError(err error, lr *limitedReader) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, errTooLarge):
		return fmt.Errorf("input is larger than %d bytes, the limit for a %s file", lr.max, Format)
	case err == io.EOF:
		return fmt.Errorf("empty input: not a %s JSON file", Format)
	case err == io.ErrUnexpectedEOF:
		return fmt.Errorf("truncated JSON at byte offset %d: not a complete %s file", lr.n, Format)
	case errors.As(err, &syn):
		// Offset counts the bytes read up to and including the bad one.
		off := max(syn.Offset-1, 0)
		msg := syn.Error()
		if off > 0 && (strings.Contains(msg, "character 'N'") || strings.Contains(msg, "character 'I'")) {
			return fmt.Errorf("not a %s JSON file: %s at byte offset %d; NaN and Infinity are not allowed", Format, msg, off)
		}
		return fmt.Errorf("not a %s JSON file: %s at byte offset %d", Format, msg, off)
	case errors.As(err, &typ):
		return fmt.Errorf("not a %s JSON file: the top level is %s %s, not an object", Format, article(typ.Value), typ.Value)
	}
	return err
}

func article(s string) string {
	if s != "" && strings.ContainsRune("aeiou", rune(s[0])) {
		return "an"
	}
	return "a"
}

// kind returns the name of the JSON type of the value in raw.
func kind(raw json.RawMessage) string {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// field returns m[key], or an error naming path.key when it is absent.
func field(m map[string]json.RawMessage, path, key string) (json.RawMessage, error) {
	raw, ok := m[key]
	if !ok {
		return nil, fmt.Errorf("%s: missing", join(path, key))
	}
	return raw, nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// checkKeys returns an error for the first key of m, in sorted order, that is
// not among known.
func checkKeys(m map[string]json.RawMessage, path string, known ...string) error {
	var unknown []string
	for k := range m {
		if !slices.Contains(known, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	if path == "" {
		return fmt.Errorf("unknown field %q", unknown[0])
	}
	return fmt.Errorf("%s: unknown field %q", path, unknown[0])
}

func decodeString(raw json.RawMessage, path string) (string, error) {
	var s string
	if k := kind(raw); k != "a string" {
		return "", fmt.Errorf("%s: %s, want a string", path, k)
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%s: %v", path, err)
	}
	return s, nil
}

func decodeArray[T any](raw json.RawMessage, path string, dst *[]T) error {
	if k := kind(raw); k != "an array" {
		return fmt.Errorf("%s: %s, want an array", path, k)
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	return nil
}

// num is a JSON value that should be a finite number. Decoding never fails;
// bad records why the value is not one.
type num struct {
	v   float64
	bad string
}

func (x *num) UnmarshalJSON(data []byte) error {
	*x = num{}
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		x.bad = "missing value"
		return nil
	}
	switch data[0] {
	case '"':
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			x.bad = err.Error()
			return nil
		}
		switch strings.ToLower(strings.TrimLeft(s, "+-")) {
		case "nan", "inf", "infinity":
			x.bad = fmt.Sprintf("%s is not allowed", s)
		default:
			x.bad = fmt.Sprintf("%.32q is a string, not a number", s)
		}
	case 'n':
		x.bad = "null is not a number"
	case 't', 'f':
		x.bad = fmt.Sprintf("%s is not a number", data)
	case '[':
		x.bad = "an array is not a number"
	case '{':
		x.bad = "an object is not a number"
	default:
		v, err := strconv.ParseFloat(string(data), 64)
		if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
			x.bad = fmt.Sprintf("%.32s is out of range", data)
			return nil
		}
		x.v = v
	}
	return nil
}

// count decodes a positive integer no larger than maxParams.
func count(m map[string]json.RawMessage, path, key string) (int, error) {
	raw, err := field(m, path, key)
	if err != nil {
		return 0, err
	}
	path = join(path, key)
	var x num
	x.UnmarshalJSON(raw)
	switch {
	case x.bad != "":
		return 0, fmt.Errorf("%s: %s", path, x.bad)
	case x.v != math.Trunc(x.v) || x.v < 1:
		return 0, fmt.Errorf("%s: %s is not a positive integer", path, formatFloat(x.v))
	case x.v > maxParams:
		return 0, fmt.Errorf("%s: %s exceeds the limit of %d", path, formatFloat(x.v), maxParams)
	}
	return int(x.v), nil
}

// fileLayer is one decoded layer.
type fileLayer struct {
	nn.Layer
	w, b   []float64 // W row-major, b
	wm, bm []bool    // masks; nil when absent
}

func parse(top map[string]json.RawMessage) (*nn.Network, error) {
	raw, ok := top["format"]
	if !ok {
		return nil, fmt.Errorf("format: missing; not a %s file", Format)
	}
	format, err := decodeString(raw, "format")
	if err != nil {
		return nil, err
	}
	if format != Format {
		if strings.HasPrefix(format, "prune-mlp/") {
			return nil, fmt.Errorf("format: %s: unsupported version, this build reads %s", format, Format)
		}
		return nil, fmt.Errorf("format: %.64q is not %s", format, Format)
	}
	if err := checkKeys(top, "", "format", "loss", "layers", "meta"); err != nil {
		return nil, err
	}

	raw, err = field(top, "", "loss")
	if err != nil {
		return nil, err
	}
	name, err := decodeString(raw, "loss")
	if err != nil {
		return nil, err
	}
	loss, err := nn.ParseLoss(name)
	if err != nil {
		return nil, fmt.Errorf("loss: %w", err)
	}

	raw, err = field(top, "", "layers")
	if err != nil {
		return nil, err
	}
	var elems []json.RawMessage
	if err := decodeArray(raw, "layers", &elems); err != nil {
		return nil, err
	}
	if len(elems) == 0 {
		return nil, errors.New("layers: no layers")
	}
	layers := make([]fileLayer, len(elems))
	total := 0
	var scratch []num
	for l, raw := range elems {
		path := fmt.Sprintf("layers[%d]", l)
		fl := &layers[l]
		prev := 0
		if l > 0 {
			prev = layers[l-1].Out
		}
		if err := parseLayer(fl, raw, path, prev, &total, &scratch); err != nil {
			return nil, err
		}
		elems[l] = nil // release the raw layer
	}

	var meta map[string]any
	if raw, ok := top["meta"]; ok {
		switch kind(raw) {
		case "null":
		case "an object":
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.UseNumber()
			if err := dec.Decode(&meta); err != nil {
				return nil, fmt.Errorf("meta: %v", err)
			}
		default:
			return nil, fmt.Errorf("meta: %s, want an object", kind(raw))
		}
	}

	ls := make([]nn.Layer, len(layers))
	masked := false
	for l, fl := range layers {
		ls[l] = fl.Layer
		masked = masked || fl.wm != nil || fl.bm != nil
	}
	n, err := nn.FromLayers(ls, loss)
	if err != nil {
		return nil, fmt.Errorf("layers: %w", err)
	}
	theta := n.RawParams()
	for l, fl := range layers {
		copy(theta[n.Offset(l):], fl.w)
		copy(n.Bias(l), fl.b)
	}
	if masked {
		m := make([]bool, len(theta))
		for l, fl := range layers {
			w := m[n.Offset(l) : n.Offset(l)+fl.Out*fl.In]
			b := m[n.Offset(l)+fl.Out*fl.In : n.Offset(l+1)]
			if fl.wm != nil {
				copy(w, fl.wm)
			} else {
				fill(w, true)
			}
			if fl.bm != nil {
				copy(b, fl.bm)
			} else {
				fill(b, true)
			}
		}
		n.SetMask(m)
	}
	if len(meta) > 0 {
		n.Meta = meta
	}
	return n, nil
}

func fill(s []bool, v bool) {
	for i := range s {
		s[i] = v
	}
}

// parseLayer decodes the layer in raw at path into fl. The layer's input
// count must equal prev unless prev is zero, and total, the number of
// parameters so far, must stay within maxParams.
func parseLayer(fl *fileLayer, raw json.RawMessage, path string, prev int, total *int, scratch *[]num) error {
	if k := kind(raw); k != "an object" {
		return fmt.Errorf("%s: %s, want an object", path, k)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	if err := checkKeys(m, path, "in", "out", "activation", "weight", "bias", "weight_mask", "bias_mask"); err != nil {
		return err
	}
	var err error
	if fl.In, err = count(m, path, "in"); err != nil {
		return err
	}
	if fl.Out, err = count(m, path, "out"); err != nil {
		return err
	}
	if prev > 0 && fl.In != prev {
		return fmt.Errorf("%s.in: %d does not match the previous layer's out = %d", path, fl.In, prev)
	}
	// fl.In, fl.Out ≤ maxParams, so nothing overflows.
	if *total += fl.NumParams(); *total > maxParams {
		return fmt.Errorf("%s: the network has more than %d parameters, the limit", path, maxParams)
	}
	raw, err = field(m, path, "activation")
	if err != nil {
		return err
	}
	name, err := decodeString(raw, path+".activation")
	if err != nil {
		return err
	}
	if fl.Act, err = nn.ParseActivation(name); err != nil {
		return fmt.Errorf("%s.activation: %w", path, err)
	}

	// Weights and biases.
	raw, err = field(m, path, "weight")
	if err != nil {
		return err
	}
	if fl.w, err = matrix(raw, path+".weight", fl.Out, fl.In, scratch); err != nil {
		return err
	}
	raw, err = field(m, path, "bias")
	if err != nil {
		return err
	}
	if fl.b, err = vector(raw, path+".bias", fl.Out, scratch); err != nil {
		return err
	}

	// Masks.
	if raw, ok := m["weight_mask"]; ok {
		v, err := matrix(raw, path+".weight_mask", fl.Out, fl.In, scratch)
		if err != nil {
			return err
		}
		fl.wm = make([]bool, len(v))
		for q, x := range v {
			j, i := q/fl.In, q%fl.In
			if fl.wm[q], err = bit(x); err != nil {
				return fmt.Errorf("%s.weight_mask[%d][%d]: %v", path, j, i, err)
			}
			if w := fl.w[q]; !fl.wm[q] && w != 0 {
				return fmt.Errorf("%s.weight[%d][%d] is masked but %s, not zero", path, j, i, formatFloat(w))
			}
		}
	}
	if raw, ok := m["bias_mask"]; ok {
		v, err := vector(raw, path+".bias_mask", fl.Out, scratch)
		if err != nil {
			return err
		}
		fl.bm = make([]bool, len(v))
		for j, x := range v {
			if fl.bm[j], err = bit(x); err != nil {
				return fmt.Errorf("%s.bias_mask[%d]: %v", path, j, err)
			}
			if b := fl.b[j]; !fl.bm[j] && b != 0 {
				return fmt.Errorf("%s.bias[%d] is masked but %s, not zero", path, j, formatFloat(b))
			}
		}
	}
	return nil
}

// bit returns the mask value x as live (1) or pruned (0).
func bit(x float64) (bool, error) {
	switch x {
	case 1:
		return true, nil
	case 0:
		return false, nil
	}
	return false, fmt.Errorf("%s is not 0 or 1", formatFloat(x))
}

// matrix decodes raw at path as rows arrays of cols finite numbers and
// returns them in row-major order.
func matrix(raw json.RawMessage, path string, rows, cols int, scratch *[]num) ([]float64, error) {
	if v, ok := scanMatrix(raw, rows, cols); ok {
		return v, nil
	}
	return decodeMatrix(raw, path, rows, cols, scratch)
}

// decodeMatrix is the slow path of matrix, which explains what is wrong.
func decodeMatrix(raw json.RawMessage, path string, rows, cols int, scratch *[]num) ([]float64, error) {
	var rs []json.RawMessage
	if err := decodeArray(raw, path, &rs); err != nil {
		return nil, err
	}
	if len(rs) != rows {
		return nil, fmt.Errorf("%s: length %d, want out = %d rows", path, len(rs), rows)
	}
	v := make([]float64, 0, capacity(rows*cols, raw))
	for j, r := range rs {
		p := fmt.Sprintf("%s[%d]", path, j)
		if err := decodeArray(r, p, scratch); err != nil {
			return nil, err
		}
		if len(*scratch) != cols {
			return nil, fmt.Errorf("%s: length %d, want in = %d", p, len(*scratch), cols)
		}
		for i, x := range *scratch {
			if x.bad != "" {
				return nil, fmt.Errorf("%s[%d]: %s", p, i, x.bad)
			}
			v = append(v, x.v)
		}
	}
	return v, nil
}

// vector decodes raw at path as an array of size finite numbers.
func vector(raw json.RawMessage, path string, size int, scratch *[]num) ([]float64, error) {
	s := scanner{b: raw}
	if v, ok := s.numbers(make([]float64, 0, capacity(size, raw))); ok && s.end() && len(v) == size {
		return v, nil
	}
	// Slow path, which explains what is wrong.
	if err := decodeArray(raw, path, scratch); err != nil {
		return nil, err
	}
	if len(*scratch) != size {
		return nil, fmt.Errorf("%s: length %d, want out = %d", path, len(*scratch), size)
	}
	v := make([]float64, len(*scratch))
	for j, x := range *scratch {
		if x.bad != "" {
			return nil, fmt.Errorf("%s[%d]: %s", path, j, x.bad)
		}
		v[j] = x.v
	}
	return v, nil
}

// capacity returns n, or less when raw is too short to hold n numbers.
func capacity(n int, raw []byte) int { return min(n, len(raw)/2+1) }

// scanMatrix parses raw as rows arrays of cols finite numbers and returns
// them in row-major order. It reports false for anything else, including
// valid input it does not handle; matrix then decodes raw the slow way.
// raw must be valid JSON.
func scanMatrix(raw []byte, rows, cols int) ([]float64, bool) {
	s := scanner{b: raw}
	if !s.next('[') {
		return nil, false
	}
	v := make([]float64, 0, capacity(rows*cols, raw))
	for j := 0; j < rows; j++ {
		if j > 0 && !s.next(',') {
			return nil, false
		}
		n := len(v)
		var ok bool
		if v, ok = s.numbers(v); !ok || len(v)-n != cols {
			return nil, false
		}
	}
	if !s.next(']') || !s.end() {
		return nil, false
	}
	return v, true
}

// scanner reads arrays of numbers from valid JSON.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// next consumes c, after white space, and reports whether it was there.
func (s *scanner) next(c byte) bool {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// end reports whether only white space is left.
func (s *scanner) end() bool {
	s.space()
	return s.i == len(s.b)
}

// number reads a finite number.
func (s *scanner) number() (float64, bool) {
	s.space()
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		if '0' <= c && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			s.i++
			continue
		}
		break
	}
	if s.i == start {
		return 0, false
	}
	v, err := strconv.ParseFloat(string(s.b[start:s.i]), 64)
	return v, err == nil
}

// numbers appends the numbers of an array to dst.
func (s *scanner) numbers(dst []float64) ([]float64, bool) {
	if !s.next('[') {
		return dst, false
	}
	if s.next(']') {
		return dst, true
	}
	for {
		v, ok := s.number()
		if !ok {
			return dst, false
		}
		dst = append(dst, v)
		if s.next(']') {
			return dst, true
		}
		if !s.next(',') {
			return dst, false
		}
	}
}

// formatFloat returns the shortest decimal form of v that reads back as v.
func formatFloat(v float64) string { return string(appendFloat(nil, v)) }

// appendFloat appends the shortest decimal form of v that reads back as v,
// in the style of encoding/json: plain notation for magnitudes in
// [1e-6, 1e21), exponent notation otherwise.
func appendFloat(b []byte, v float64) []byte {
	abs := math.Abs(v)
	f := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		f = 'e'
	}
	b = strconv.AppendFloat(b, v, f, -1, 64)
	if f == 'e' {
		// Shorten e-07 to e-7.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// writable returns an error when n cannot be written, and its Meta as
// indented JSON, or nil when it has none.
func jsonWritable(n *nn.Network) ([]byte, error) {
	if err := n.CheckFinite(); err != nil {
		return nil, fmt.Errorf("cannot write %s: %w", Format, err)
	}
	theta := n.RawParams()
	for q, v := range theta {
		if v != 0 && !n.IsLive(q) {
			return nil, fmt.Errorf("cannot write %s: parameter %d (%v) is pruned but %v, not zero", Format, q, n.ParamAt(q), v)
		}
	}
	if len(n.Meta) == 0 {
		return nil, nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("  ", "  ")
	if err := enc.Encode(n.Meta); err != nil {
		return nil, fmt.Errorf("cannot write %s: meta: %v", Format, err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// WriteJSON writes n to w in the prune-mlp/1 format (see Format). The output
// depends only on the network: the same network gives the same bytes. It
// returns an error, having written nothing, when a parameter is NaN or ±Inf
// or Meta cannot be encoded as JSON.
func WriteJSON(w io.Writer, n *nn.Network) error {
	meta, err := jsonWritable(n)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	masks := n.HasMask()
	theta := n.RawParams()
	var mask []bool
	if masks {
		mask = n.Mask()
	}
	b := make([]byte, 0, 1024)
	b = append(b, "{\n  \"format\": \""+Format+"\",\n  \"loss\": \""+n.Loss().String()+"\",\n  \"layers\": ["...)
	for l, ly := range n.Layers() {
		if l > 0 {
			b = append(b, ',')
		}
		b = append(b, "\n    {\n      \"in\": "...)
		b = strconv.AppendInt(b, int64(ly.In), 10)
		b = append(b, ",\n      \"out\": "...)
		b = strconv.AppendInt(b, int64(ly.Out), 10)
		b = append(b, ",\n      \"activation\": \""+ly.Act.String()+"\",\n      \"weight\": ["...)
		off := n.Offset(l)
		for j := 0; j < ly.Out; j++ {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, "\n        "...)
			b = appendRow(b, theta[off+j*ly.In:off+(j+1)*ly.In])
			bw.Write(b)
			b = b[:0]
		}
		b = append(b, "\n      ],\n      \"bias\": "...)
		boff := off + ly.Out*ly.In
		b = appendRow(b, theta[boff:boff+ly.Out])
		if masks {
			b = append(b, ",\n      \"weight_mask\": ["...)
			for j := 0; j < ly.Out; j++ {
				if j > 0 {
					b = append(b, ',')
				}
				b = append(b, "\n        "...)
				b = appendMask(b, mask[off+j*ly.In:off+(j+1)*ly.In])
				bw.Write(b)
				b = b[:0]
			}
			b = append(b, "\n      ],\n      \"bias_mask\": "...)
			b = appendMask(b, mask[boff:boff+ly.Out])
		}
		b = append(b, "\n    }"...)
	}
	b = append(b, "\n  ]"...)
	if meta != nil {
		b = append(b, ",\n  \"meta\": "...)
		b = append(b, meta...)
	}
	b = append(b, "\n}\n"...)
	bw.Write(b)
	return bw.Flush()
}

func appendRow(b []byte, v []float64) []byte {
	b = append(b, '[')
	for i, x := range v {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = appendFloat(b, x)
	}
	return append(b, ']')
}

func appendMask(b []byte, m []bool) []byte {
	b = append(b, '[')
	for i, live := range m {
		if i > 0 {
			b = append(b, ", "...)
		}
		if live {
			b = append(b, '1')
		} else {
			b = append(b, '0')
		}
	}
	return append(b, ']')
}

// loadJSON reads a network in the prune-mlp/1 format from the file at path.
// Errors about the content are prefixed with the path.
func loadJSON(path string) (*nn.Network, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	n, err := ReadJSON(f)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return nil, err
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return n, nil
}

// saveJSON writes n to the file at path in the prune-mlp/1 format. The file is
// replaced atomically: after an error, or a crash, path holds either its old
// content or the complete new file.
func saveJSON(path string, n *nn.Network) error {
	if _, err := jsonWritable(n); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return atomicfile.Write(path, func(w io.Writer) error { return WriteJSON(w, n) })
}
