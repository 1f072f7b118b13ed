package allocator

import (
	"fmt"
	"time"
)

// Reason says why a request could not be met. The reconciler puts it in the
// Service's condition and event; its String is CamelCase for that purpose.
type Reason uint8

const (
	_ Reason = iota
	// InvalidRequest: the request contradicts itself (a malformed or
	// duplicated address, two addresses of one family, more than two).
	InvalidRequest
	// PoolNotFound: the address-pool annotation names no usable pool.
	PoolNotFound
	// PoolNotAllowed: the pool's serviceAllocation excludes this Service.
	PoolNotAllowed
	// NoPool: no pool with autoAssign admits this Service.
	NoPool
	// PoolExhausted: the candidate pools have the family but no free address.
	PoolExhausted
	// NotInPool: a requested address lies outside every pool (or outside the
	// named pool, or is one its avoidBuggyIPs excludes).
	NotInPool
	// InUse: a requested address is held by a Service it may not be shared
	// with.
	InUse
	// WrongFamily: a requested address is of a family the Service does not
	// have, or the requested addresses do not cover what the policy needs.
	WrongFamily
	// FamilyUnavailable: no candidate pool has the family (or, for
	// RequireDualStack, both families).
	FamilyUnavailable
)

var reasonNames = [...]string{
	InvalidRequest:    "InvalidRequest",
	PoolNotFound:      "PoolNotFound",
	PoolNotAllowed:    "PoolNotAllowed",
	NoPool:            "NoPool",
	PoolExhausted:     "PoolExhausted",
	NotInPool:         "NotInPool",
	InUse:             "InUse",
	WrongFamily:       "WrongFamily",
	FamilyUnavailable: "FamilyUnavailable",
}

func (r Reason) String() string {
	if int(r) < len(reasonNames) && reasonNames[r] != "" {
		return reasonNames[r]
	}
	return fmt.Sprintf("Reason(%d)", uint8(r))
}

// Error is a refused request: errors.As finds it in whatever wraps it.
type Error struct {
	Reason Reason
	// Msg is for humans: it names the addresses, pools and Services involved.
	Msg string
	// RetryAt, for PoolExhausted, is when the first held-down address of a
	// candidate pool comes free: the reconciler may requeue for then. Zero
	// when waiting would not help.
	RetryAt time.Time
}

func (e *Error) Error() string { return e.Reason.String() + ": " + e.Msg }

func fail(r Reason, format string, args ...any) *Error {
	return &Error{Reason: r, Msg: fmt.Sprintf(format, args...)}
}
