package torchbin

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// The unpickler below reads the pickles torch.save writes for a
// state_dict and nothing else. It is a stack machine over a fixed set of
// opcodes; the only callables it knows are the allow-listed rebuild
// functions, which it interprets itself. A pickle naming any other global
// is refused when the global is named, before anything could be called:
// nothing from the file is ever executed.

// Values on the unpickler's stack.
type (
	tuple  []any
	list   struct{ items []any }
	dict   struct{ keys, vals []any }
	global struct{ module, name string }
	// odict is a collections.OrderedDict (a state_dict); its BUILD state
	// (the _metadata attribute) is ignored.
	odict struct{ dict }
	// storage is a persistent id ("storage", <Type>Storage, key, location, numel).
	storage struct {
		dtype DType
		key   string
		numel int64
	}
	// tensor is the result of _rebuild_tensor_v2.
	tensor struct {
		st     *storage
		offset int64
		shape  []int64
		stride []int64
	}
	mark struct{}
)

// allowed lists the globals a torch state_dict pickle names.
var allowed = map[string]bool{
	"collections OrderedDict":                    true,
	"torch._utils _rebuild_tensor_v2":            true,
	"torch._utils _rebuild_tensor":               true,
	"torch._utils _rebuild_parameter":            true,
	"torch._utils _rebuild_parameter_with_state": true,
	"torch._tensor _rebuild_from_type_v2":        true,
	"torch Tensor":                               true,
	"torch.nn.parameter Parameter":               true,
	"_codecs encode":                             true,
}

// storageTypes maps torch's typed storage classes to dtypes.
var storageTypes = map[string]DType{
	"FloatStorage": F32, "HalfStorage": F16, "BFloat16Storage": BF16, "DoubleStorage": F64,
	"LongStorage": I64, "IntStorage": I32, "ShortStorage": I16, "CharStorage": I8,
	"ByteStorage": U8, "BoolStorage": Bool,
}

func lookupGlobal(module, name string) (any, error) {
	if module == "torch" {
		if dt, ok := storageTypes[name]; ok {
			return storageType{dt}, nil
		}
	}
	if allowed[module+" "+name] {
		return global{module, name}, nil
	}
	return nil, fmt.Errorf("the pickle names %s.%s, which a torch state_dict never contains: refused (rerank never runs code from a checkpoint; re-save it as safetensors)", module, name)
}

type storageType struct{ dtype DType }

const (
	maxStack = 1 << 20 // values on the stack and in the memo
	maxDims  = 64
)

// unpickle runs a state_dict pickle and returns its top object.
func unpickle(data []byte) (any, error) {
	u := &unpickler{data: data, memo: map[int64]any{}}
	v, err := u.run()
	if err != nil {
		return nil, fmt.Errorf("data.pkl at byte %d: %w", u.pos, err)
	}
	return v, nil
}

type unpickler struct {
	data  []byte
	pos   int
	stack []any
	marks []int
	memo  map[int64]any
}

var errTruncated = errors.New("truncated pickle")

func (u *unpickler) read(n int) ([]byte, error) {
	if n < 0 || n > len(u.data)-u.pos {
		return nil, errTruncated
	}
	b := u.data[u.pos : u.pos+n]
	u.pos += n
	return b, nil
}

func (u *unpickler) byte1() (byte, error) {
	b, err := u.read(1)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

func (u *unpickler) line() (string, error) {
	i := strings.IndexByte(string(u.data[u.pos:]), '\n')
	if i < 0 {
		return "", errTruncated
	}
	s := string(u.data[u.pos : u.pos+i])
	u.pos += i + 1
	return s, nil
}

func (u *unpickler) push(v any) error {
	if len(u.stack) >= maxStack {
		return errors.New("pickle stack too deep")
	}
	u.stack = append(u.stack, v)
	return nil
}

func (u *unpickler) pop() (any, error) {
	if len(u.stack) == 0 || (len(u.marks) > 0 && len(u.stack) <= u.marks[len(u.marks)-1]) {
		return nil, errors.New("pickle pops an empty stack")
	}
	v := u.stack[len(u.stack)-1]
	u.stack = u.stack[:len(u.stack)-1]
	return v, nil
}

func (u *unpickler) top() (any, error) {
	if len(u.stack) == 0 || (len(u.marks) > 0 && len(u.stack) <= u.marks[len(u.marks)-1]) {
		return nil, errors.New("pickle reads an empty stack")
	}
	return u.stack[len(u.stack)-1], nil
}

// popMark returns the values pushed since the last MARK.
func (u *unpickler) popMark() ([]any, error) {
	if len(u.marks) == 0 {
		return nil, errors.New("pickle has no MARK to pop to")
	}
	m := u.marks[len(u.marks)-1]
	u.marks = u.marks[:len(u.marks)-1]
	items := append([]any(nil), u.stack[m:]...)
	u.stack = u.stack[:m]
	return items, nil
}

func (u *unpickler) memoize(k int64) error {
	v, err := u.top()
	if err != nil {
		return err
	}
	if _, ok := u.memo[k]; !ok && len(u.memo) >= maxStack {
		return errors.New("pickle memo too large")
	}
	u.memo[k] = v
	return nil
}

func (u *unpickler) get(k int64) error {
	v, ok := u.memo[k]
	if !ok {
		return fmt.Errorf("pickle reads memo %d, never stored", k)
	}
	return u.push(v)
}

func (u *unpickler) run() (any, error) {
	for {
		op, err := u.byte1()
		if err != nil {
			return nil, err
		}
		switch op {
		case 0x80: // PROTO
			v, err := u.byte1()
			if err != nil {
				return nil, err
			}
			if v > 5 {
				return nil, fmt.Errorf("pickle protocol %d is not supported", v)
			}
		case 0x95: // FRAME
			if _, err := u.read(8); err != nil {
				return nil, err
			}
		case '.': // STOP
			return u.pop()
		case '(': // MARK
			if len(u.marks) >= maxStack {
				return nil, errors.New("too many MARKs")
			}
			u.marks = append(u.marks, len(u.stack))
		case '0': // POP
			if _, err := u.pop(); err != nil {
				return nil, err
			}
		case '1': // POP_MARK
			if _, err := u.popMark(); err != nil {
				return nil, err
			}
		case '2': // DUP
			v, err := u.top()
			if err != nil {
				return nil, err
			}
			err = u.push(v)
			if err != nil {
				return nil, err
			}
		case 'N':
			err = u.push(nil)
		case 0x88: // NEWTRUE
			err = u.push(true)
		case 0x89: // NEWFALSE
			err = u.push(false)
		case 'I': // INT (text), also True/False as I01/I00
			s, err := u.line()
			if err != nil {
				return nil, err
			}
			switch s {
			case "01":
				err = u.push(true)
			case "00":
				err = u.push(false)
			default:
				n, perr := strconv.ParseInt(s, 10, 64)
				if perr != nil {
					return nil, fmt.Errorf("bad INT %q", s)
				}
				err = u.push(n)
			}
			if err != nil {
				return nil, err
			}
		case 'J': // BININT
			b, err := u.read(4)
			if err != nil {
				return nil, err
			}
			err = u.push(int64(int32(binary.LittleEndian.Uint32(b))))
			if err != nil {
				return nil, err
			}
		case 'K': // BININT1
			b, err := u.byte1()
			if err != nil {
				return nil, err
			}
			err = u.push(int64(b))
			if err != nil {
				return nil, err
			}
		case 'M': // BININT2
			b, err := u.read(2)
			if err != nil {
				return nil, err
			}
			err = u.push(int64(binary.LittleEndian.Uint16(b)))
			if err != nil {
				return nil, err
			}
		case 0x8a, 0x8b: // LONG1, LONG4
			var n int
			if op == 0x8a {
				b, err := u.byte1()
				if err != nil {
					return nil, err
				}
				n = int(b)
			} else {
				b, err := u.read(4)
				if err != nil {
					return nil, err
				}
				n = int(int32(binary.LittleEndian.Uint32(b)))
			}
			b, err := u.read(n)
			if err != nil {
				return nil, err
			}
			v, err := decodeLong(b)
			if err != nil {
				return nil, err
			}
			if err := u.push(v); err != nil {
				return nil, err
			}
		case 'G': // BINFLOAT
			b, err := u.read(8)
			if err != nil {
				return nil, err
			}
			err = u.push(math.Float64frombits(binary.BigEndian.Uint64(b)))
			if err != nil {
				return nil, err
			}
		case 'X', 0x8c, 0x8d: // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8
			var n int64
			switch op {
			case 'X':
				b, err := u.read(4)
				if err != nil {
					return nil, err
				}
				n = int64(binary.LittleEndian.Uint32(b))
			case 0x8c:
				b, err := u.byte1()
				if err != nil {
					return nil, err
				}
				n = int64(b)
			default:
				b, err := u.read(8)
				if err != nil {
					return nil, err
				}
				n = int64(binary.LittleEndian.Uint64(b))
			}
			if n < 0 || n > int64(len(u.data)) {
				return nil, errTruncated
			}
			b, err := u.read(int(n))
			if err != nil {
				return nil, err
			}
			if err := u.push(string(b)); err != nil {
				return nil, err
			}
		case 'T', 'U', 'B', 'C': // BINSTRING, SHORT_BINSTRING, BINBYTES, SHORT_BINBYTES
			var n int64
			if op == 'U' || op == 'C' {
				b, err := u.byte1()
				if err != nil {
					return nil, err
				}
				n = int64(b)
			} else {
				b, err := u.read(4)
				if err != nil {
					return nil, err
				}
				n = int64(binary.LittleEndian.Uint32(b))
			}
			if n > int64(len(u.data)) {
				return nil, errTruncated
			}
			b, err := u.read(int(n))
			if err != nil {
				return nil, err
			}
			var v any = string(b)
			if op == 'B' || op == 'C' {
				v = append([]byte(nil), b...)
			}
			if err := u.push(v); err != nil {
				return nil, err
			}
		case ')': // EMPTY_TUPLE
			err = u.push(tuple{})
		case 0x85, 0x86, 0x87: // TUPLE1..3
			n := int(op - 0x84)
			if len(u.stack) < n || (len(u.marks) > 0 && len(u.stack)-n < u.marks[len(u.marks)-1]) {
				return nil, errors.New("pickle builds a tuple from an empty stack")
			}
			t := append(tuple(nil), u.stack[len(u.stack)-n:]...)
			u.stack = u.stack[:len(u.stack)-n]
			err = u.push(t)
		case 't': // TUPLE
			items, err := u.popMark()
			if err != nil {
				return nil, err
			}
			err = u.push(tuple(items))
			if err != nil {
				return nil, err
			}
		case ']': // EMPTY_LIST
			err = u.push(&list{})
		case 'l': // LIST
			items, err := u.popMark()
			if err != nil {
				return nil, err
			}
			err = u.push(&list{items: items})
			if err != nil {
				return nil, err
			}
		case 'a', 'e': // APPEND, APPENDS
			var items []any
			if op == 'a' {
				v, err := u.pop()
				if err != nil {
					return nil, err
				}
				items = []any{v}
			} else if items, err = u.popMark(); err != nil {
				return nil, err
			}
			t, err := u.top()
			if err != nil {
				return nil, err
			}
			l, ok := t.(*list)
			if !ok {
				return nil, fmt.Errorf("pickle appends to a %s, not a list", kindOf(t))
			}
			l.items = append(l.items, items...)
		case '}': // EMPTY_DICT
			err = u.push(&dict{})
		case 'd': // DICT
			items, err := u.popMark()
			if err != nil {
				return nil, err
			}
			d := &dict{}
			if err := d.setItems(items); err != nil {
				return nil, err
			}
			err = u.push(d)
			if err != nil {
				return nil, err
			}
		case 's', 'u': // SETITEM, SETITEMS
			var items []any
			if op == 's' {
				v, err := u.pop()
				if err != nil {
					return nil, err
				}
				k, err := u.pop()
				if err != nil {
					return nil, err
				}
				items = []any{k, v}
			} else if items, err = u.popMark(); err != nil {
				return nil, err
			}
			t, err := u.top()
			if err != nil {
				return nil, err
			}
			d := asDict(t)
			if d == nil {
				return nil, fmt.Errorf("pickle sets items of a %s, not a dict", kindOf(t))
			}
			if err := d.setItems(items); err != nil {
				return nil, err
			}
		case 'q': // BINPUT
			b, err := u.byte1()
			if err != nil {
				return nil, err
			}
			err = u.memoize(int64(b))
			if err != nil {
				return nil, err
			}
		case 'r': // LONG_BINPUT
			b, err := u.read(4)
			if err != nil {
				return nil, err
			}
			err = u.memoize(int64(binary.LittleEndian.Uint32(b)))
			if err != nil {
				return nil, err
			}
		case 'p': // PUT
			s, err := u.line()
			if err != nil {
				return nil, err
			}
			k, perr := strconv.ParseInt(s, 10, 64)
			if perr != nil {
				return nil, fmt.Errorf("bad PUT %q", s)
			}
			err = u.memoize(k)
			if err != nil {
				return nil, err
			}
		case 0x94: // MEMOIZE
			err = u.memoize(int64(len(u.memo)))
		case 'h': // BINGET
			b, err := u.byte1()
			if err != nil {
				return nil, err
			}
			err = u.get(int64(b))
			if err != nil {
				return nil, err
			}
		case 'j': // LONG_BINGET
			b, err := u.read(4)
			if err != nil {
				return nil, err
			}
			err = u.get(int64(binary.LittleEndian.Uint32(b)))
			if err != nil {
				return nil, err
			}
		case 'g': // GET
			s, err := u.line()
			if err != nil {
				return nil, err
			}
			k, perr := strconv.ParseInt(s, 10, 64)
			if perr != nil {
				return nil, fmt.Errorf("bad GET %q", s)
			}
			err = u.get(k)
			if err != nil {
				return nil, err
			}
		case 'c': // GLOBAL
			module, err := u.line()
			if err != nil {
				return nil, err
			}
			name, err := u.line()
			if err != nil {
				return nil, err
			}
			g, err := lookupGlobal(module, name)
			if err != nil {
				return nil, err
			}
			err = u.push(g)
			if err != nil {
				return nil, err
			}
		case 0x93: // STACK_GLOBAL
			name, err := u.pop()
			if err != nil {
				return nil, err
			}
			module, err := u.pop()
			if err != nil {
				return nil, err
			}
			ms, ok1 := module.(string)
			ns, ok2 := name.(string)
			if !ok1 || !ok2 {
				return nil, errors.New("STACK_GLOBAL of non-strings")
			}
			g, err := lookupGlobal(ms, ns)
			if err != nil {
				return nil, err
			}
			err = u.push(g)
			if err != nil {
				return nil, err
			}
		case 'R': // REDUCE
			args, err := u.pop()
			if err != nil {
				return nil, err
			}
			fn, err := u.pop()
			if err != nil {
				return nil, err
			}
			t, ok := args.(tuple)
			if !ok {
				return nil, fmt.Errorf("REDUCE with %s arguments, not a tuple", kindOf(args))
			}
			v, err := call(fn, t)
			if err != nil {
				return nil, err
			}
			err = u.push(v)
			if err != nil {
				return nil, err
			}
		case 'b': // BUILD
			state, err := u.pop()
			if err != nil {
				return nil, err
			}
			t, err := u.top()
			if err != nil {
				return nil, err
			}
			switch t.(type) {
			case *odict:
				// The state_dict's _metadata (module versions): not needed.
			case *tensor:
				// A Parameter's or tensor subclass's __dict__: not needed.
			default:
				return nil, fmt.Errorf("BUILD on a %s (state %s): a torch state_dict has none", kindOf(t), kindOf(state))
			}
		case 'Q': // BINPERSID
			pid, err := u.pop()
			if err != nil {
				return nil, err
			}
			st, err := persistentLoad(pid)
			if err != nil {
				return nil, err
			}
			err = u.push(st)
			if err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("pickle opcode %q (0x%02x) is not part of a torch state_dict: refused", op, op)
		}
		if err != nil {
			return nil, err
		}
	}
}

func decodeLong(b []byte) (int64, error) {
	if len(b) == 0 {
		return 0, nil
	}
	if len(b) > 8 {
		return 0, errors.New("integer wider than 64 bits")
	}
	// Two's complement, little-endian.
	be := make([]byte, len(b))
	for i := range b {
		be[len(b)-1-i] = b[i]
	}
	n := new(big.Int).SetBytes(be)
	if b[len(b)-1]&0x80 != 0 {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	if !n.IsInt64() {
		return 0, errors.New("integer wider than 64 bits")
	}
	return n.Int64(), nil
}

func asDict(v any) *dict {
	switch d := v.(type) {
	case *dict:
		return d
	case *odict:
		return &d.dict
	}
	return nil
}

func (d *dict) setItems(items []any) error {
	if len(items)%2 != 0 {
		return errors.New("dict items come in key, value pairs")
	}
	for i := 0; i < len(items); i += 2 {
		d.keys = append(d.keys, items[i])
		d.vals = append(d.vals, items[i+1])
	}
	return nil
}

func kindOf(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case bool:
		return "bool"
	case int64:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case []byte:
		return "bytes"
	case tuple:
		return "tuple"
	case *list:
		return "list"
	case *dict:
		return "dict"
	case *odict:
		return "OrderedDict"
	case global:
		return v.module + "." + v.name
	case storageType:
		return "storage type"
	case *storage:
		return "storage"
	case *tensor:
		return "tensor"
	}
	return fmt.Sprintf("%T", v)
}

// persistentLoad resolves ("storage", <Type>Storage, key, location, numel).
func persistentLoad(pid any) (*storage, error) {
	t, ok := pid.(tuple)
	if !ok || len(t) != 5 || t[0] != "storage" {
		return nil, fmt.Errorf("persistent id %s is not a torch storage", kindOf(pid))
	}
	st, ok := t[1].(storageType)
	if !ok {
		return nil, fmt.Errorf("persistent storage of type %s, not a torch storage class", kindOf(t[1]))
	}
	key, ok := t[2].(string)
	if !ok || key == "" || strings.ContainsAny(key, `/\`) || key == "." || key == ".." {
		return nil, fmt.Errorf("persistent storage key %v is not a record name", t[2])
	}
	numel, ok := t[4].(int64)
	if !ok || numel < 0 {
		return nil, fmt.Errorf("persistent storage %s has size %v", key, t[4])
	}
	return &storage{dtype: st.dtype, key: key, numel: numel}, nil
}

// call interprets REDUCE of an allow-listed callable.
func call(fn any, args tuple) (any, error) {
	g, ok := fn.(global)
	if !ok {
		return nil, fmt.Errorf("REDUCE calls a %s: refused", kindOf(fn))
	}
	switch g.module + " " + g.name {
	case "collections OrderedDict":
		if len(args) != 0 {
			return nil, errors.New("OrderedDict with arguments")
		}
		return &odict{}, nil
	case "torch._utils _rebuild_tensor_v2", "torch._utils _rebuild_tensor":
		// (storage, storage_offset, size, stride[, requires_grad, backward_hooks[, metadata]])
		if len(args) < 4 {
			return nil, fmt.Errorf("%s with %d arguments", g.name, len(args))
		}
		st, ok := args[0].(*storage)
		if !ok {
			return nil, fmt.Errorf("%s of a %s, not a storage", g.name, kindOf(args[0]))
		}
		off, ok := args[1].(int64)
		if !ok || off < 0 {
			return nil, fmt.Errorf("%s: bad storage offset %v", g.name, args[1])
		}
		shape, err := ints(args[2])
		if err != nil {
			return nil, fmt.Errorf("%s: size: %w", g.name, err)
		}
		stride, err := ints(args[3])
		if err != nil {
			return nil, fmt.Errorf("%s: stride: %w", g.name, err)
		}
		if len(shape) != len(stride) {
			return nil, fmt.Errorf("%s: size %v and stride %v differ in length", g.name, shape, stride)
		}
		return &tensor{st: st, offset: off, shape: shape, stride: stride}, nil
	case "torch._utils _rebuild_parameter", "torch._utils _rebuild_parameter_with_state":
		// (data, requires_grad, backward_hooks[, state])
		if len(args) < 1 {
			return nil, fmt.Errorf("%s without arguments", g.name)
		}
		t, ok := args[0].(*tensor)
		if !ok {
			return nil, fmt.Errorf("%s of a %s", g.name, kindOf(args[0]))
		}
		return t, nil
	case "torch._tensor _rebuild_from_type_v2":
		// (func, type, args, state): func(*args) as a plain tensor.
		if len(args) < 3 {
			return nil, fmt.Errorf("%s with %d arguments", g.name, len(args))
		}
		if ty, ok := args[1].(global); !ok || (ty.name != "Tensor" && ty.name != "Parameter") {
			return nil, fmt.Errorf("%s to type %s: only torch.Tensor and Parameter are accepted", g.name, kindOf(args[1]))
		}
		inner, ok := args[2].(tuple)
		if !ok {
			return nil, fmt.Errorf("%s with %s arguments", g.name, kindOf(args[2]))
		}
		return call(args[0], inner)
	case "_codecs encode":
		// Protocol 2 writes bytes as _codecs.encode(str, "latin1").
		if len(args) != 2 {
			return nil, errors.New("_codecs.encode with bad arguments")
		}
		s, ok1 := args[0].(string)
		enc, ok2 := args[1].(string)
		if !ok1 || !ok2 || (enc != "latin1" && enc != "latin-1") {
			return nil, errors.New("_codecs.encode with bad arguments")
		}
		b := make([]byte, 0, len(s))
		for _, r := range s {
			if r > 0xff {
				return nil, errors.New("_codecs.encode: not latin1")
			}
			b = append(b, byte(r))
		}
		return b, nil
	}
	return nil, fmt.Errorf("REDUCE calls %s.%s, which is not callable here: refused", g.module, g.name)
}

func ints(v any) ([]int64, error) {
	t, ok := v.(tuple)
	if !ok {
		if l, isList := v.(*list); isList {
			t = l.items
		} else {
			return nil, fmt.Errorf("a %s, not a tuple", kindOf(v))
		}
	}
	if len(t) > maxDims {
		return nil, fmt.Errorf("%d dimensions", len(t))
	}
	out := make([]int64, len(t))
	for i, x := range t {
		n, ok := x.(int64)
		if !ok || n < 0 {
			return nil, fmt.Errorf("entry %d is %v", i, x)
		}
		out[i] = n
	}
	return out, nil
}
