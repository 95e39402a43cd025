package naming

import (
	"bytes"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ProvenanceHeader is the record header in which kdr lists the clusters a
// record has been mirrored from, origin first, comma-separated:
// "east,west" on a record now on central that was produced on east and
// mirrored east→west→central.
//
// It is how loops are stopped under Identity naming, where topic names say
// nothing. A flow from S to T does, per record:
//
//	if Visited(h, T) { skip }    // T has had this record already
//	h = WithHop(h, S)
//
// so in active-active east⇄west, a record produced on east reaches west as
// "east" and is not sent back to east. Records without the header (produced
// by clients, or mirrored by MM2) have an empty provenance. Aliases never
// contain commas (ValidateAlias), so the list needs no escaping.
const ProvenanceHeader = "kdr-origin"

// Provenance returns the clusters the record passed through, origin first.
// Several ProvenanceHeader headers are read in order as one list; empty
// entries and surrounding spaces are ignored.
func Provenance(headers []kgo.RecordHeader) []string {
	var out []string
	for _, h := range headers {
		if h.Key != ProvenanceHeader {
			continue
		}
		for _, a := range strings.Split(string(h.Value), ",") {
			if a = strings.TrimSpace(a); a != "" {
				out = append(out, a)
			}
		}
	}
	return out
}

// Visited reports whether alias is in the record's provenance. It does not
// allocate.
func Visited(headers []kgo.RecordHeader, alias string) bool {
	if alias == "" {
		return false
	}
	for _, h := range headers {
		if h.Key != ProvenanceHeader {
			continue
		}
		for rest := h.Value; len(rest) > 0; {
			var a []byte
			a, rest, _ = bytes.Cut(rest, []byte{','})
			if string(bytes.TrimSpace(a)) == alias {
				return true
			}
		}
	}
	return false
}

// Mirrored reports whether the record's provenance names any cluster: it
// was mirrored, not written by a client on the cluster it is read from. It
// does not allocate.
func Mirrored(headers []kgo.RecordHeader) bool {
	for _, h := range headers {
		if h.Key == ProvenanceHeader && chainNamesAny(h.Value) {
			return true
		}
	}
	return false
}

// chainNamesAny reports whether a provenance value holds an alias, not only
// commas and spaces.
func chainNamesAny(v []byte) bool {
	return len(bytes.Trim(v, ", \t\n\r\v\f")) > 0
}

// WithHop returns a copy of headers whose provenance ends in alias: the
// first ProvenanceHeader header (merged with any later ones, which are
// dropped) gets ",alias" appended, or one is added at the end. The input
// slice and its values are not modified, so a consumed record's headers can
// be passed straight in.
func WithHop(headers []kgo.RecordHeader, alias string) []kgo.RecordHeader {
	chain := append(Provenance(headers), alias)
	value := []byte(strings.Join(chain, ","))
	out := make([]kgo.RecordHeader, 0, len(headers)+1)
	placed := false
	for _, h := range headers {
		if h.Key != ProvenanceHeader {
			out = append(out, h)
			continue
		}
		if !placed {
			out = append(out, kgo.RecordHeader{Key: ProvenanceHeader, Value: value})
			placed = true
		}
	}
	if !placed {
		out = append(out, kgo.RecordHeader{Key: ProvenanceHeader, Value: value})
	}
	return out
}
