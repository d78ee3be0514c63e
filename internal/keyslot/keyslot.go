// Package keyslot computes the Redis Cluster hash slot of a key, so tests
// can check without a cluster that the keys one script or transaction
// takes land in one slot (a cluster refuses them otherwise: CROSSSLOT).
package keyslot

import "strings"

// Slots is the number of hash slots of a Redis Cluster.
const Slots = 16384

// Of is the slot of a key: CRC16 (XMODEM) of its hash tag — the part
// between the first "{" and the next "}", when that is not empty — or of
// the whole key, modulo Slots (the Redis Cluster specification's rule).
func Of(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for k := 0; k < len(key); k++ {
		crc ^= uint16(key[k]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) % Slots
}
