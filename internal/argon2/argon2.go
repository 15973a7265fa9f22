// Copyright 2017 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Package argon2 is golang.org/x/crypto/argon2 (the version Upstream names,
// same license, see LICENSE) reduced to Argon2id with one change: the block memory can be
// reused across calls (Memory), so a server hashing continuously does not
// allocate, zero and garbage-collect m KiB per hash. The first pass
// overwrites blocks instead of XOR-ing them into zeroed memory (identical
// output, checked against x/crypto in the tests).
package argon2

import (
	"encoding/binary"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/blake2b"
)

// The Argon2 version implemented by this package.
const Version = 0x13

const (
	argon2d = iota
	argon2i
	argon2id
)

// Memory is reusable block memory for IDKey. The zero value is ready; a
// Memory must not be used by two calls at once; Release it when done. On Unix its blocks are
// mapped outside the Go heap (memory_unix.go): m KiB of live heap per
// hashing slot would let the garbage collector's pacing (GOGC) leave as
// much garbage again before collecting, which is what made a login storm's
// RSS (docs/benchmarks.md).
type Memory struct {
	blocks []block
	free   func() // unmaps blocks; nil when they are on the Go heap
}

// Size is the bytes of block memory held.
func (m *Memory) Size() int { return len(m.blocks) * blockLength * 8 }

// Release gives the block memory back (the next IDKey allocates it again).
func (m *Memory) Release() {
	if m.free != nil {
		m.free()
	}
	m.blocks, m.free = nil, nil
}

// grow makes m hold at least n blocks.
func (m *Memory) grow(n uint32) {
	if uint32(len(m.blocks)) >= n {
		return
	}
	m.Release()
	m.blocks, m.free = allocBlocks(int(n))
}

// IDKey is argon2.IDKey from x/crypto, computing in mem (grown as needed)
// instead of a fresh allocation. mem may be nil.
func IDKey(mem *Memory, password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte {
	return deriveKey(mem, argon2id, password, salt, nil, nil, time, memory, threads, keyLen, nil)
}

// IDKeyCPU is IDKey that also returns the CPU time the derivation used,
// summed over the threads computing it (their per-thread CPU clocks, so
// neither other processes on the machine nor time spent waiting for a CPU
// count; 0 where the OS has no such clock). Each goroutine of the
// derivation keeps its thread while it computes.
func IDKeyCPU(mem *Memory, password, salt []byte, iterations, memory uint32, threads uint8, keyLen uint32) ([]byte, time.Duration) {
	var cpu atomic.Int64
	done := measureCPU(&cpu)
	key := deriveKey(mem, argon2id, password, salt, nil, nil, iterations, memory, threads, keyLen, &cpu)
	done()
	return key, time.Duration(cpu.Load())
}

// measureCPU locks the calling goroutine to its thread and returns the
// function that adds the thread's CPU time since to total and unlocks it.
func measureCPU(total *atomic.Int64) (done func()) {
	runtime.LockOSThread()
	t0 := threadCPU()
	return func() {
		total.Add(int64(threadCPU() - t0))
		runtime.UnlockOSThread()
	}
}

// deriveKey computes the key; cpu, when not nil, gets the CPU time of the
// lanes computed on goroutines of their own (the caller measures its own).
func deriveKey(mem *Memory, mode int, password, salt, secret, data []byte, time, memory uint32, threads uint8, keyLen uint32, cpu *atomic.Int64) []byte {
	if time < 1 {
		panic("argon2: number of rounds too small")
	}
	if threads < 1 {
		panic("argon2: parallelism degree too low")
	}
	h0 := initHash(password, salt, secret, data, time, memory, uint32(threads), keyLen, mode)

	memory = memory / (syncPoints * uint32(threads)) * (syncPoints * uint32(threads))
	if memory < 2*syncPoints*uint32(threads) {
		memory = 2 * syncPoints * uint32(threads)
	}
	if mem == nil {
		// One-off: on the Go heap, collected as usual.
		mem = &Memory{blocks: make([]block, memory)}
	}
	mem.grow(memory)
	B := initBlocks(mem.blocks[:memory:memory], &h0, memory, uint32(threads))
	processBlocks(B, time, memory, uint32(threads), mode, cpu)
	return extractKey(B, memory, uint32(threads), keyLen)
}

const (
	blockLength = 128
	syncPoints  = 4
)

type block [blockLength]uint64

func initHash(password, salt, key, data []byte, time, memory, threads, keyLen uint32, mode int) [blake2b.Size + 8]byte {
	var (
		h0     [blake2b.Size + 8]byte
		params [24]byte
		tmp    [4]byte
	)

	b2, _ := blake2b.New512(nil)
	binary.LittleEndian.PutUint32(params[0:4], threads)
	binary.LittleEndian.PutUint32(params[4:8], keyLen)
	binary.LittleEndian.PutUint32(params[8:12], memory)
	binary.LittleEndian.PutUint32(params[12:16], time)
	binary.LittleEndian.PutUint32(params[16:20], uint32(Version))
	binary.LittleEndian.PutUint32(params[20:24], uint32(mode))
	b2.Write(params[:])
	binary.LittleEndian.PutUint32(tmp[:], uint32(len(password)))
	b2.Write(tmp[:])
	b2.Write(password)
	binary.LittleEndian.PutUint32(tmp[:], uint32(len(salt)))
	b2.Write(tmp[:])
	b2.Write(salt)
	binary.LittleEndian.PutUint32(tmp[:], uint32(len(key)))
	b2.Write(tmp[:])
	b2.Write(key)
	binary.LittleEndian.PutUint32(tmp[:], uint32(len(data)))
	b2.Write(tmp[:])
	b2.Write(data)
	b2.Sum(h0[:0])
	return h0
}

func initBlocks(B []block, h0 *[blake2b.Size + 8]byte, memory, threads uint32) []block {
	var block0 [1024]byte
	for lane := uint32(0); lane < threads; lane++ {
		j := lane * (memory / threads)
		binary.LittleEndian.PutUint32(h0[blake2b.Size+4:], lane)

		binary.LittleEndian.PutUint32(h0[blake2b.Size:], 0)
		blake2bHash(block0[:], h0[:])
		for i := range B[j+0] {
			B[j+0][i] = binary.LittleEndian.Uint64(block0[i*8:])
		}

		binary.LittleEndian.PutUint32(h0[blake2b.Size:], 1)
		blake2bHash(block0[:], h0[:])
		for i := range B[j+1] {
			B[j+1][i] = binary.LittleEndian.Uint64(block0[i*8:])
		}
	}
	return B
}

func processBlocks(B []block, time, memory, threads uint32, mode int, cpu *atomic.Int64) {
	lanes := memory / threads
	segments := lanes / syncPoints

	processSegment := func(n, slice, lane uint32) {
		var addresses, in, zero block
		if mode == argon2i || (mode == argon2id && n == 0 && slice < syncPoints/2) {
			in[0] = uint64(n)
			in[1] = uint64(lane)
			in[2] = uint64(slice)
			in[3] = uint64(memory)
			in[4] = uint64(time)
			in[5] = uint64(mode)
		}

		index := uint32(0)
		if n == 0 && slice == 0 {
			index = 2 // we have already generated the first two blocks
			if mode == argon2i || mode == argon2id {
				in[6]++
				processBlock(&addresses, &in, &zero)
				processBlock(&addresses, &addresses, &zero)
			}
		}

		offset := lane*lanes + slice*segments + index
		var random uint64
		for index < segments {
			prev := offset - 1
			if index == 0 && slice == 0 {
				prev += lanes // last block in lane
			}
			if mode == argon2i || (mode == argon2id && n == 0 && slice < syncPoints/2) {
				if index%blockLength == 0 {
					in[6]++
					processBlock(&addresses, &in, &zero)
					processBlock(&addresses, &addresses, &zero)
				}
				random = addresses[index%blockLength]
			} else {
				random = B[prev][0]
			}
			newOffset := indexAlpha(random, lanes, segments, threads, n, slice, lane, index)
			if n == 0 {
				// Reused memory is not zeroed: the first pass overwrites
				// (x/crypto XORs into fresh zeroed memory: the same result).
				processBlock(&B[offset], &B[prev], &B[newOffset])
			} else {
				processBlockXOR(&B[offset], &B[prev], &B[newOffset])
			}
			index, offset = index+1, offset+1
		}
	}

	for n := uint32(0); n < time; n++ {
		for slice := uint32(0); slice < syncPoints; slice++ {
			if threads == 1 {
				// One lane: computed by the caller (x/crypto starts a
				// goroutine per segment, 8 per hash at t=2).
				processSegment(n, slice, 0)
				continue
			}
			var wg sync.WaitGroup
			for lane := uint32(0); lane < threads; lane++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if cpu != nil {
						defer measureCPU(cpu)()
					}
					processSegment(n, slice, lane)
				}()
			}
			wg.Wait()
		}
	}

}

func extractKey(B []block, memory, threads, keyLen uint32) []byte {
	lanes := memory / threads
	for lane := uint32(0); lane < threads-1; lane++ {
		for i, v := range B[(lane*lanes)+lanes-1] {
			B[memory-1][i] ^= v
		}
	}

	var block [1024]byte
	for i, v := range B[memory-1] {
		binary.LittleEndian.PutUint64(block[i*8:], v)
	}
	key := make([]byte, keyLen)
	blake2bHash(key, block[:])
	return key
}

func indexAlpha(rand uint64, lanes, segments, threads, n, slice, lane, index uint32) uint32 {
	refLane := uint32(rand>>32) % threads
	if n == 0 && slice == 0 {
		refLane = lane
	}
	m, s := 3*segments, ((slice+1)%syncPoints)*segments
	if lane == refLane {
		m += index
	}
	if n == 0 {
		m, s = slice*segments, 0
		if slice == 0 || lane == refLane {
			m += index
		}
	}
	if index == 0 || lane == refLane {
		m--
	}
	return phi(rand, uint64(m), uint64(s), refLane, lanes)
}

func phi(rand, m, s uint64, lane, lanes uint32) uint32 {
	p := rand & 0xFFFFFFFF
	p = (p * p) >> 32
	p = (p * m) >> 32
	return lane*lanes + uint32((s+m-(p+1))%uint64(lanes))
}
