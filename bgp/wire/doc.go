// Package wire encodes and decodes BGP-4 messages (RFC 4271) and the
// extensions a modern speaker negotiates: multiprotocol (RFC 4760), 4-octet
// AS numbers (RFC 6793), ADD-PATH (RFC 7911), extended messages (RFC 8654),
// extended optional parameters (RFC 9072), enhanced route refresh (RFC 7313),
// graceful restart (RFC 4724, RFC 9494), BGP roles and OTC (RFC 9234) and
// the shutdown communication (RFC 9003).
//
// Decoding an UPDATE is the hot path of a BGP speaker, so it allocates nothing
// per prefix: [DecodeUpdate] fills a caller-owned [Update] whose path
// attributes reuse their slices from message to message, and whose NLRI and
// withdrawn routes stay views over the message bytes, validated once and
// walked with [PrefixIter]. The view is valid until the message buffer is
// reused; copy what must outlive it.
//
// Every malformation is reported as an [*Error] that carries its RFC 7606
// class ([Action]) and, when the session must be reset, the NOTIFICATION
// code, subcode and data to send. The decoders never panic, whatever the input.
// Values that decode but mean nothing are refused at their accessor, so no
// caller meets them: [ExtCommunity.LinkBandwidth] reports no bandwidth for a
// NaN, an infinity or a negative value.
//
// The session context that changes how bytes are read (4-octet AS, ADD-PATH,
// extended messages, extended next hop, whether the peer is external) travels
// explicitly as [Options], one value per direction.
package wire
