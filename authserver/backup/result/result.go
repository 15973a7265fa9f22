// Package result is the one-line JSON summary of a backup run: written by
// `authserver backup` (authserver/backup) to BACKUP_RESULT_FILE, which the
// CronJob points at the container's termination message, and read by the
// operator (controllers/resources/backup_status.go) for status.backups.
// It imports only the standard library, so the operator can use it without
// the backup's dependencies.
package result

import (
	"encoding/json"
	"strings"
)

// Result is one backup run's outcome.
type Result struct {
	Kind       string `json:"kind"`
	OK         bool   `json:"ok"`
	DurationMS int64  `json:"duration_ms"`
	// Stored: the backup object is complete in S3 (OK, or retention failed after it).
	Stored    bool   `json:"stored,omitempty"`
	Object    string `json:"object,omitempty"`
	SizeBytes int64  `json:"size_bytes,omitempty"` // compressed and encrypted, as stored
	RawBytes  int64  `json:"raw_bytes,omitempty"`  // the dump before compression
	Error     string `json:"error,omitempty"`
	// Reason classifies a restore's outcome for the operator's Restored condition:
	// TargetNotEmpty, PepperMismatch, AlreadyRestored; empty otherwise.
	Reason string `json:"reason,omitempty"`
}

// Reasons of a restore's result.
const (
	ReasonTargetNotEmpty  = "TargetNotEmpty"
	ReasonPepperMismatch  = "PepperMismatch"
	ReasonAlreadyRestored = "AlreadyRestored"
)

// MaxErrorBytes bounds Error so the line stays inside the 4096 bytes the
// kubelet keeps of a termination message.
const MaxErrorBytes = 3000

// Line is r as one JSON line, Error cut to MaxErrorBytes.
func (r Result) Line() []byte {
	if len(r.Error) > MaxErrorBytes {
		r.Error = strings.ToValidUTF8(r.Error[:MaxErrorBytes], "")
	}
	b, _ := json.Marshal(r) // cannot fail: strings, numbers and booleans
	return append(b, '\n')
}

// Parse reads the result from a termination message: its last line, since
// the message may hold more than the result. ok is false when that line is
// not a result (and r is then the zero Result).
func Parse(message string) (r Result, ok bool) {
	s := strings.TrimSpace(message)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		return Result{}, false
	}
	return r, true
}
