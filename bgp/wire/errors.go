package wire

import (
	"errors"
	"fmt"
)

// Action is the RFC 7606 class of a malformation: what the receiver must do
// about it. The values are ordered by severity, so the most severe of several
// problems in one message is simply the largest.
type Action uint8

const (
	// ActionNone means there is nothing to do (no error).
	ActionNone Action = iota
	// AttributeDiscard: drop the offending attribute and process the rest
	// of the UPDATE normally (RFC 7606 §2).
	AttributeDiscard
	// TreatAsWithdraw: every prefix the UPDATE announces, in the NLRI field
	// and in MP_REACH_NLRI, is handled as if it had been withdrawn; the
	// session stays up (RFC 7606 §2).
	TreatAsWithdraw
	// AFISAFIDisable: stop using the message's AFI/SAFI on this session
	// (RFC 7606 §2, RFC 4760 §7). This codec never picks it on its own; it
	// exists for the session layer, which may downgrade a reset to it.
	AFISAFIDisable
	// SessionReset: send the NOTIFICATION in the error and close the session.
	SessionReset
)

func (a Action) String() string {
	switch a {
	case ActionNone:
		return "none"
	case AttributeDiscard:
		return "attribute-discard"
	case TreatAsWithdraw:
		return "treat-as-withdraw"
	case AFISAFIDisable:
		return "afi-safi-disable"
	case SessionReset:
		return "session-reset"
	}
	return fmt.Sprintf("action(%d)", uint8(a))
}

// Error is a malformation found while decoding. Code, Subcode and Data are the
// NOTIFICATION to send when Action is SessionReset; for the lesser actions they
// still name the problem in RFC 4271 terms for logs.
type Error struct {
	Action  Action
	Code    uint8
	Subcode uint8
	Data    []byte
	// Attr is the path attribute type code involved, or 0.
	Attr   uint8
	Reason string
}

func (e *Error) Error() string {
	s := fmt.Sprintf("bgp %s: %s (%s)", e.Action, e.Reason, CodeString(e.Code, e.Subcode))
	if e.Attr != 0 {
		s += fmt.Sprintf(" [attribute %s]", AttrTypeString(e.Attr))
	}
	return s
}

// Is makes errors.Is(err, ErrMalformed) true for every *Error.
func (e *Error) Is(target error) bool { return target == ErrMalformed }

// Notification returns the NOTIFICATION message to send for e.
func (e *Error) Notification() Notification {
	return Notification{Code: e.Code, Subcode: e.Subcode, Data: e.Data}
}

// ErrMalformed matches every decoding error of this package with errors.Is.
var ErrMalformed = errors.New("bgp: malformed message")

// AsError returns the *Error in err's chain, if any.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// ActionOf returns the RFC 7606 action err demands: ActionNone for nil, the
// error's class for an *Error, and SessionReset for anything else (an
// unexpected error is never safe to ignore).
func ActionOf(err error) Action {
	if err == nil {
		return ActionNone
	}
	if e, ok := AsError(err); ok {
		return e.Action
	}
	return SessionReset
}

func resetErr(code, sub uint8, data []byte, format string, args ...any) *Error {
	return &Error{Action: SessionReset, Code: code, Subcode: sub, Data: data, Reason: fmt.Sprintf(format, args...)}
}

// attrErr builds an UPDATE error about attribute t. The data for a reset is
// the attribute itself (type, length and value), as RFC 4271 §6.3 asks.
func attrErr(a Action, sub uint8, t uint8, raw []byte, format string, args ...any) *Error {
	var data []byte
	if a == SessionReset && raw != nil {
		data = append([]byte(nil), raw...)
	}
	return &Error{Action: a, Code: ErrCodeUpdate, Subcode: sub, Data: data, Attr: t, Reason: fmt.Sprintf(format, args...)}
}

// NOTIFICATION error codes (RFC 4271 §4.5, RFC 7313, RFC 9687).
const (
	ErrCodeHeader        uint8 = 1
	ErrCodeOpen          uint8 = 2
	ErrCodeUpdate        uint8 = 3
	ErrCodeHoldTimer     uint8 = 4
	ErrCodeFSM           uint8 = 5
	ErrCodeCease         uint8 = 6
	ErrCodeRouteRefresh  uint8 = 7
	ErrCodeSendHoldTimer uint8 = 8
)

// Message Header Error subcodes.
const (
	ErrSubConnNotSynchronized uint8 = 1
	ErrSubBadMessageLength    uint8 = 2
	ErrSubBadMessageType      uint8 = 3
)

// OPEN Message Error subcodes (RFC 4271, RFC 5492, RFC 9234).
const (
	ErrSubUnsupportedVersion    uint8 = 1
	ErrSubBadPeerAS             uint8 = 2
	ErrSubBadBGPIdentifier      uint8 = 3
	ErrSubUnsupportedOptParam   uint8 = 4
	ErrSubUnacceptableHoldTime  uint8 = 6
	ErrSubUnsupportedCapability uint8 = 7
	ErrSubRoleMismatch          uint8 = 11
)

// UPDATE Message Error subcodes.
const (
	ErrSubMalformedAttrList     uint8 = 1
	ErrSubUnrecognizedWellKnown uint8 = 2
	ErrSubMissingWellKnown      uint8 = 3
	ErrSubAttrFlags             uint8 = 4
	ErrSubAttrLength            uint8 = 5
	ErrSubInvalidOrigin         uint8 = 6
	ErrSubInvalidNextHop        uint8 = 8
	ErrSubOptionalAttr          uint8 = 9
	ErrSubInvalidNetworkField   uint8 = 10
	ErrSubMalformedASPath       uint8 = 11
)

// Finite State Machine Error subcodes (RFC 6608).
const (
	ErrSubFSMUnexpectedOpenSent    uint8 = 1
	ErrSubFSMUnexpectedOpenConfirm uint8 = 2
	ErrSubFSMUnexpectedEstablished uint8 = 3
)

// Cease subcodes (RFC 4486, RFC 8538, RFC 9384).
const (
	CeaseMaxPrefixes        uint8 = 1
	CeaseAdminShutdown      uint8 = 2
	CeasePeerDeconfigured   uint8 = 3
	CeaseAdminReset         uint8 = 4
	CeaseConnectionRejected uint8 = 5
	CeaseOtherConfigChange  uint8 = 6
	CeaseCollision          uint8 = 7
	CeaseOutOfResources     uint8 = 8
	CeaseHardReset          uint8 = 9
	CeaseBFDDown            uint8 = 10
)

// ROUTE-REFRESH Message Error subcodes (RFC 7313).
const ErrSubInvalidRouteRefreshLength uint8 = 1

var codeNames = map[uint8]string{
	ErrCodeHeader:        "Message Header Error",
	ErrCodeOpen:          "OPEN Message Error",
	ErrCodeUpdate:        "UPDATE Message Error",
	ErrCodeHoldTimer:     "Hold Timer Expired",
	ErrCodeFSM:           "Finite State Machine Error",
	ErrCodeCease:         "Cease",
	ErrCodeRouteRefresh:  "ROUTE-REFRESH Message Error",
	ErrCodeSendHoldTimer: "Send Hold Timer Expired",
}

var subcodeNames = map[[2]uint8]string{
	{ErrCodeHeader, ErrSubConnNotSynchronized}: "Connection Not Synchronized",
	{ErrCodeHeader, ErrSubBadMessageLength}:    "Bad Message Length",
	{ErrCodeHeader, ErrSubBadMessageType}:      "Bad Message Type",

	{ErrCodeOpen, ErrSubUnsupportedVersion}:    "Unsupported Version Number",
	{ErrCodeOpen, ErrSubBadPeerAS}:             "Bad Peer AS",
	{ErrCodeOpen, ErrSubBadBGPIdentifier}:      "Bad BGP Identifier",
	{ErrCodeOpen, ErrSubUnsupportedOptParam}:   "Unsupported Optional Parameter",
	{ErrCodeOpen, 5}:                           "Authentication Failure (deprecated)",
	{ErrCodeOpen, ErrSubUnacceptableHoldTime}:  "Unacceptable Hold Time",
	{ErrCodeOpen, ErrSubUnsupportedCapability}: "Unsupported Capability",
	{ErrCodeOpen, ErrSubRoleMismatch}:          "Role Mismatch",

	{ErrCodeUpdate, ErrSubMalformedAttrList}:     "Malformed Attribute List",
	{ErrCodeUpdate, ErrSubUnrecognizedWellKnown}: "Unrecognized Well-known Attribute",
	{ErrCodeUpdate, ErrSubMissingWellKnown}:      "Missing Well-known Attribute",
	{ErrCodeUpdate, ErrSubAttrFlags}:             "Attribute Flags Error",
	{ErrCodeUpdate, ErrSubAttrLength}:            "Attribute Length Error",
	{ErrCodeUpdate, ErrSubInvalidOrigin}:         "Invalid ORIGIN Attribute",
	{ErrCodeUpdate, 7}:                           "AS Routing Loop (deprecated)",
	{ErrCodeUpdate, ErrSubInvalidNextHop}:        "Invalid NEXT_HOP Attribute",
	{ErrCodeUpdate, ErrSubOptionalAttr}:          "Optional Attribute Error",
	{ErrCodeUpdate, ErrSubInvalidNetworkField}:   "Invalid Network Field",
	{ErrCodeUpdate, ErrSubMalformedASPath}:       "Malformed AS_PATH",

	{ErrCodeFSM, ErrSubFSMUnexpectedOpenSent}:    "Receive Unexpected Message in OpenSent State",
	{ErrCodeFSM, ErrSubFSMUnexpectedOpenConfirm}: "Receive Unexpected Message in OpenConfirm State",
	{ErrCodeFSM, ErrSubFSMUnexpectedEstablished}: "Receive Unexpected Message in Established State",

	{ErrCodeCease, CeaseMaxPrefixes}:        "Maximum Number of Prefixes Reached",
	{ErrCodeCease, CeaseAdminShutdown}:      "Administrative Shutdown",
	{ErrCodeCease, CeasePeerDeconfigured}:   "Peer De-configured",
	{ErrCodeCease, CeaseAdminReset}:         "Administrative Reset",
	{ErrCodeCease, CeaseConnectionRejected}: "Connection Rejected",
	{ErrCodeCease, CeaseOtherConfigChange}:  "Other Configuration Change",
	{ErrCodeCease, CeaseCollision}:          "Connection Collision Resolution",
	{ErrCodeCease, CeaseOutOfResources}:     "Out of Resources",
	{ErrCodeCease, CeaseHardReset}:          "Hard Reset",
	{ErrCodeCease, CeaseBFDDown}:            "BFD Down",

	{ErrCodeRouteRefresh, ErrSubInvalidRouteRefreshLength}: "Invalid Message Length",
}

// CodeString names a NOTIFICATION code and subcode, e.g.
// "Cease / Administrative Shutdown".
func CodeString(code, sub uint8) string {
	c, ok := codeNames[code]
	if !ok {
		c = fmt.Sprintf("code %d", code)
	}
	if sub == 0 {
		return c
	}
	s, ok := subcodeNames[[2]uint8{code, sub}]
	if !ok {
		s = fmt.Sprintf("subcode %d", sub)
	}
	return c + " / " + s
}
