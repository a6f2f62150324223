package binding

import (
	"bytes"
	"sync"

	"github.com/beevik/etree"
)

// maxPooledBuffer is the largest scratch buffer kept for reuse; a bigger one (a huge message)
// is left to the garbage collector.
const maxPooledBuffer = 1 << 20

// scratchBuffers are the buffers Serialize writes into before it copies the result out: a
// message is written into a buffer that already has room for it, and the copy handed to the
// caller is exactly its size. A buffer is reset before it goes back, and never leaves the call.
var scratchBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// Serialize returns the XML of el and its subtree, byte for byte what etree writes for a document
// whose root is el (default write settings). Unlike a Document, it leaves el where it is: el
// keeps its parent.
func Serialize(el *etree.Element) []byte {
	buf := scratchBuffers.Get().(*bytes.Buffer)
	var settings etree.WriteSettings
	el.WriteTo(buf, &settings)
	out := bytes.Clone(buf.Bytes())
	buf.Reset()
	if buf.Cap() <= maxPooledBuffer {
		scratchBuffers.Put(buf)
	}
	return out
}
