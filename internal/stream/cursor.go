package stream

import (
	"crypto/rand"
	"encoding/base64"
	"strconv"
	"strings"
	"time"
)

// An event id is "<leaseID>.<ms>.<seq>": the stream's lease id (22
// base64url characters, unguessable), the time of the event in Unix
// milliseconds and a sequence number, both base 36. It is at most ~45
// bytes of [A-Za-z0-9._-], so a cross-origin EventSource sends it back as
// Last-Event-ID without a CORS preflight. It proves nothing by itself: a
// resume is admitted only when the lease it names exists in Redis and
// belongs to the same user, ticket, purpose and devices.
type cursor struct {
	Lease string
	At    time.Time
	Seq   uint64
}

const leaseIDLen = 22

func newLeaseID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func appendCursor(dst []byte, lease string, at time.Time, seq uint64) []byte {
	dst = append(dst, lease...)
	dst = append(dst, '.')
	if ms := at.UnixMilli(); ms >= 0 {
		dst = appendBase36(dst, uint64(ms))
	} else {
		dst = strconv.AppendInt(dst, ms, 36) // never in practice: before 1970
	}
	dst = append(dst, '.')
	return appendBase36(dst, seq)
}

// appendBase36 appends v as strconv.AppendUint(dst, v, 36) does. Every
// event's id has two such numbers, and strconv divides by a variable base:
// by the constant 36 the compiler multiplies instead, several times faster
// (BenchmarkDeliver).
func appendBase36(dst []byte, v uint64) []byte {
	const digits = "0123456789abcdefghijklmnopqrstuvwxyz"
	var b [13]byte // 36^13 > 2^64
	i := len(b)
	for v >= 36 {
		q := v / 36
		i--
		b[i] = digits[v-q*36]
		v = q
	}
	i--
	b[i] = digits[v]
	return append(dst, b[i:]...)
}

// parseCursor parses a Last-Event-ID; ok is false for anything that is not
// exactly a cursor of ours.
func parseCursor(s string) (c cursor, ok bool) {
	if len(s) > 64 {
		return c, false
	}
	lease, rest, ok1 := strings.Cut(s, ".")
	ms, seq, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || len(lease) != leaseIDLen || len(ms) == 0 || len(ms) > 9 || len(seq) == 0 || len(seq) > 13 {
		return c, false
	}
	for i := 0; i < len(lease); i++ {
		ch := lease[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_') {
			return c, false
		}
	}
	m, err1 := strconv.ParseInt(ms, 36, 64)
	n, err2 := strconv.ParseUint(seq, 36, 64)
	if err1 != nil || err2 != nil || m < 0 || strings.HasPrefix(ms, "+") || strings.HasPrefix(seq, "+") {
		return c, false
	}
	return cursor{Lease: lease, At: time.UnixMilli(m), Seq: n}, true
}
