// Package wire is the Kafka protocol front end of a kdr broker: it accepts TCP
// connections, frames requests (4-byte size prefix), parses request headers
// (v0–v2, with KIP-482 tagged fields for flexible versions), decodes bodies with
// franz-go's kmsg, dispatches them through a Registry, and writes responses in
// request order.
//
// Requests on one connection are processed one at a time, as Kafka does: the
// next request is read only after the handler for the previous one returned.
// Responses are encoded and written by a separate goroutine, so a client that
// pipelines requests overlaps its network time with the broker's work.
//
// Anything the broker cannot make sense of ends the connection, not the
// process: a size prefix over the limit or negative, a truncated header, an API
// key that is not registered, an unsupported version of any API other than
// ApiVersions, or a body kmsg cannot decode. A too-new ApiVersions request is
// answered the way Kafka answers it (KIP-511): a v0 response carrying
// UNSUPPORTED_VERSION and the supported ranges, so the client can retry lower.
package wire
