package view

import "github.com/bgplb/bgplb/bfd"

// BFDOf is a BFD session's status as the API shows it; the router and the
// speaker both attach it to their neighbours.
func BFDOf(s bfd.Status) *BFD {
	b := &BFD{
		Session: s.Key.String(), State: s.State.String(), RemoteState: s.RemoteState.String(),
		LocalDiag: s.LocalDiag.String(), RemoteDiag: s.RemoteDiag.String(),
		LocalDisc: s.LocalDisc, RemoteDisc: s.RemoteDisc,
		TxIntervalUs: s.TxInterval.Microseconds(), DetectTimeUs: s.DetectTime.Microseconds(),
		RemoteMinTxUs: s.RemoteMinTx.Microseconds(), RemoteMinRxUs: s.RemoteMinRx.Microseconds(),
		RemoteMult: s.RemoteMult, Polling: s.Polling,
		LastUp: s.LastUp, LastDown: s.LastDown, LastRx: s.LastRx,
		PacketsIn: s.PacketsIn, PacketsOut: s.PacketsOut, Dropped: s.Dropped, DroppedTTL: s.DroppedTTL,
		SendErrors: s.SendErrors, EventsLost: s.EventsLost,
	}
	if !s.LastDown.IsZero() {
		b.LastDownDiag = s.LastDownDiag.String()
	}
	return b
}
