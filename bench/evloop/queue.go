//go:build linux

package main

// slot is one request a client is owed a reply for. It sits in its
// client's queue (in request order) and, until the reply comes, in the
// FIFO of the server connection the request went to; replies on a server
// connection come back in the order the requests were written, so the
// head of that FIFO is always the slot the next reply belongs to.
// Slots are recycled through the loop's free list: none is allocated per
// request in steady state.
type slot struct {
	c     *client
	next  *slot  // the client's next request
	reply []byte // the reply, kept here only while an earlier one is owed
	done  bool   // reply is complete (or the slot needs no server)
}

// fifo is a ring of slots awaiting replies on one server connection.
type fifo struct {
	buf  []*slot // len is a power of two
	head int
	n    int
}

func (q *fifo) push(s *slot) {
	if q.n == len(q.buf) {
		grown := make([]*slot, max(16, 2*len(q.buf)))
		for i := range q.n {
			grown[i] = q.buf[(q.head+i)&(len(q.buf)-1)]
		}
		q.buf, q.head = grown, 0
	}
	q.buf[(q.head+q.n)&(len(q.buf)-1)] = s
	q.n++
}

func (q *fifo) pop() *slot {
	if q.n == 0 {
		return nil
	}
	s := q.buf[q.head]
	q.buf[q.head] = nil
	q.head = (q.head + 1) & (len(q.buf) - 1)
	q.n--
	return s
}
