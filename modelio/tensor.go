package modelio

import (
	"encoding/binary"
	"fmt"
	"math"
)

// The dtypes of the tensors that reading accepts, as Layout.DType names
// them.
const (
	dtF16  = "float16"
	dtBF16 = "bfloat16"
	dtF32  = "float32"
	dtF64  = "float64"
)

// dtypeSize returns the size in bytes of an element of dtype, or 0 for a
// dtype that is not supported.
func dtypeSize(dtype string) int {
	switch dtype {
	case dtF16, dtBF16:
		return 2
	case dtF32:
		return 4
	case dtF64:
		return 8
	}
	return 0
}

// tensor is one named tensor of a state_dict, its values in C order.
type tensor struct {
	key   string
	dtype string
	shape []int
	data  []float64
}

// numel returns the number of elements of shape, or -1 when it exceeds
// maxElems or a dimension is negative.
func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		if d < 0 || d > maxElems {
			return -1
		}
		if n *= d; n > maxElems {
			return -1
		}
	}
	return n
}

// decode writes to dst the len(dst) values of dtype stored in b in byte
// order bo; b holds exactly len(dst) elements.
func decode(dst []float64, b []byte, dtype string, bo binary.ByteOrder) {
	switch dtype {
	case dtF16:
		for i := range dst {
			dst[i] = halfValue(bo.Uint16(b[2*i:]), 10, 15)
		}
	case dtBF16:
		for i := range dst {
			dst[i] = float64(math.Float32frombits(uint32(bo.Uint16(b[2*i:])) << 16))
		}
	case dtF32:
		for i := range dst {
			dst[i] = float64(math.Float32frombits(bo.Uint32(b[4*i:])))
		}
	case dtF64:
		for i := range dst {
			dst[i] = math.Float64frombits(bo.Uint64(b[8*i:]))
		}
	default:
		panic("modelio: decode of dtype " + dtype)
	}
}

// encode appends to b the values v in dtype, little-endian. Each value is
// rounded to the nearest value of dtype, ties to even, so that a value read
// from dtype is written back bit for bit. The caller has checked that the
// values fit (see fits).
func encode(b []byte, v []float64, dtype string) []byte {
	le := binary.LittleEndian
	for _, x := range v {
		switch dtype {
		case dtF16:
			b = le.AppendUint16(b, halfBits(x, 10, 15))
		case dtBF16:
			b = le.AppendUint16(b, halfBits(x, 7, 127))
		case dtF32:
			b = le.AppendUint32(b, math.Float32bits(float32(x)))
		case dtF64:
			b = le.AppendUint64(b, math.Float64bits(x))
		default:
			panic("modelio: encode to dtype " + dtype)
		}
	}
	return b
}

// fits reports whether the finite x stays finite in dtype.
func fits(x float64, dtype string) bool {
	switch dtype {
	case dtF16:
		return halfBits(x, 10, 15)&0x7fff != 0x7c00
	case dtBF16:
		return halfBits(x, 7, 127)&0x7fff != 0x7f80
	case dtF32:
		return !math.IsInf(float64(float32(x)), 0)
	}
	return true
}

// halfValue returns the value of the 16-bit float h with mbits mantissa bits
// and exponent bias bias (float16: 10, 15; bfloat16: 7, 127).
func halfValue(h uint16, mbits, bias int) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	emax := 1<<(15-mbits) - 1
	e := int(h>>mbits) & emax
	m := float64(h & (1<<mbits - 1))
	switch e {
	case 0:
		return sign * math.Ldexp(m, 1-bias-mbits)
	case emax:
		if m != 0 {
			return math.NaN()
		}
		return math.Inf(int(sign))
	}
	return sign * math.Ldexp(1+m/float64(int(1)<<mbits), e-bias)
}

// halfBits returns the 16-bit float with mbits mantissa bits and exponent
// bias bias nearest to x, ties to even; values too large become ±Inf.
func halfBits(x float64, mbits, bias int) uint16 {
	var sign uint16
	if math.Signbit(x) {
		sign = 0x8000
		x = -x
	}
	emax := 1<<(15-mbits) - 1
	inf := sign | uint16(emax)<<mbits
	switch {
	case math.IsNaN(x):
		return inf | 1<<(mbits-1)
	case math.IsInf(x, 0):
		return inf
	case x == 0:
		return sign
	}
	frac, exp := math.Frexp(x) // x = frac·2^exp, frac in [0.5, 1)
	e := exp - 1               // x = (2·frac)·2^e
	if e < 1-bias {
		// Subnormal: a multiple of 2^(1-bias-mbits); 1<<mbits is the
		// smallest normal number, whose bits are the same.
		q := math.RoundToEven(math.Ldexp(x, bias-1+mbits))
		return sign | uint16(q)
	}
	m := math.RoundToEven((2*frac - 1) * float64(int(1)<<mbits))
	if m == float64(int(1)<<mbits) {
		m, e = 0, e+1
	}
	if e > bias {
		return inf
	}
	return sign | uint16(e+bias)<<mbits | uint16(m)
}

// strided gathers the tensor of shape and strides (in elements) starting at
// offset in storage into C order. It returns an error when an element lies
// outside the storage.
func strided(storage []float64, offset int, shape, stride []int) ([]float64, error) {
	if len(shape) != len(stride) {
		return nil, fmt.Errorf("%d sizes but %d strides", len(shape), len(stride))
	}
	n := numel(shape)
	if n < 0 {
		return nil, fmt.Errorf("shape %s: more than %d elements", shapeString(shape), maxElems)
	}
	if offset < 0 {
		return nil, fmt.Errorf("storage offset %d is negative", offset)
	}
	if n == 0 {
		return []float64{}, nil
	}
	last := offset
	for i, d := range shape {
		if stride[i] < 0 {
			return nil, fmt.Errorf("stride %d is negative", stride[i])
		}
		if stride[i] > len(storage) {
			return nil, fmt.Errorf("stride %d exceeds the storage of %d elements", stride[i], len(storage))
		}
		last += (d - 1) * stride[i]
	}
	if last >= len(storage) {
		return nil, fmt.Errorf("shape %s with strides %v at offset %d needs %d elements, but the storage holds %d", shapeString(shape), stride, offset, last+1, len(storage))
	}
	out := make([]float64, n)
	idx := make([]int, len(shape))
	pos := offset
	for k := range out {
		out[k] = storage[pos]
		for d := len(shape) - 1; d >= 0; d-- {
			idx[d]++
			pos += stride[d]
			if idx[d] < shape[d] {
				break
			}
			pos -= idx[d] * stride[d]
			idx[d] = 0
		}
	}
	return out, nil
}
