package backend

// Carver hands out consecutive views of one float32 and one int32
// allocation (llm.c style: a layer's buffers are named views of one
// block). With no memory it only counts: the counting pass that sizes the
// allocation runs the same carve code as the pass that makes the views,
// so the two cannot disagree. nn's activations and nn/infer's are carved
// with it.
type Carver struct {
	Mem  Buf    // nil while counting
	IMem IntBuf // nil while counting
	// Off and IOff are the float32 and int32 values carved so far: after a
	// counting pass, the sizes to allocate.
	Off, IOff int
}

// Take carves k values and views the first used of them (nil while
// counting). Carving more than is used keeps the offsets of the buffers
// after it independent of the part a call uses (a batch's token rows).
func (c *Carver) Take(k, used int) Buf {
	var v Buf
	if c.Mem != nil {
		v = c.Mem.Slice(c.Off, used)
	}
	c.Off += k
	return v
}

// TakeInt is Take for the int32 allocation.
func (c *Carver) TakeInt(k, used int) IntBuf {
	var v IntBuf
	if c.IMem != nil {
		v = c.IMem.Slice(c.IOff, used)
	}
	c.IOff += k
	return v
}

// Grow returns b when it holds at least n values, else a new zeroed
// allocation of n values, b freed first (nil with the error when the
// allocation fails, so that nothing keeps the freed buffer).
func Grow(be Backend, b Buf, n int) (Buf, error) {
	if b != nil && b.Len() >= n {
		return b, nil
	}
	if b != nil {
		be.Free(b)
	}
	return be.Alloc(n)
}

// GrowInt is Grow for int32 buffers.
func GrowInt(be Backend, b IntBuf, n int) (IntBuf, error) {
	if b != nil && b.Len() >= n {
		return b, nil
	}
	if b != nil {
		be.Free(b)
	}
	return be.AllocInt(n)
}
