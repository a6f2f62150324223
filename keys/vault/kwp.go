package vault

import (
	"crypto/aes"
	"encoding/binary"
	"errors"
)

// wrapKWP wraps plaintext with the AES key kek by AES Key Wrap with Padding (RFC 5649), the
// wrapping Transit's BYOK import expects for the key material (under an ephemeral AES-256 key).
func wrapKWP(kek, plaintext []byte) ([]byte, error) {
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	if len(plaintext) == 0 || uint64(len(plaintext)) > 0xffffffff {
		return nil, errors.New("kwp: plaintext of 1 to 2^32-1 octets")
	}
	// RFC 5649 3: the alternative initial value, 0xA65959A6 and the length in octets (MLI).
	var aiv [8]byte
	binary.BigEndian.PutUint32(aiv[:4], 0xA65959A6)
	binary.BigEndian.PutUint32(aiv[4:], uint32(len(plaintext)))
	padded := make([]byte, (len(plaintext)+7)/8*8) // zero padding to a multiple of 8
	copy(padded, plaintext)
	if len(padded) == 8 {
		// RFC 5649 4.1: one 64-bit block is encrypted with AIV in a single AES operation.
		out := make([]byte, 16)
		copy(out, aiv[:])
		copy(out[8:], padded)
		block.Encrypt(out, out)
		return out, nil
	}
	// RFC 3394 2.2.1, with the AIV as the initial value.
	n := len(padded) / 8
	r := make([]byte, len(padded))
	copy(r, padded)
	a := aiv
	var b [16]byte
	for j := 0; j <= 5; j++ {
		for i := 1; i <= n; i++ {
			copy(b[:8], a[:])
			copy(b[8:], r[(i-1)*8:i*8])
			block.Encrypt(b[:], b[:])
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(a[:], binary.BigEndian.Uint64(b[:8])^t)
			copy(r[(i-1)*8:i*8], b[8:])
		}
	}
	return append(a[:], r...), nil
}
