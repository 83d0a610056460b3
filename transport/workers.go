package transport

import (
	"context"
	"sync"
	"sync/atomic"
)

// maxWorkers bounds the long-lived request workers. More requests at once
// each get a goroutine of their own, which ends with the request.
const maxWorkers = 128

// workers handle requests off the connections' read loops. A goroutine's
// stack grows to its deepest call and the runtime does not shrink it
// below what that needed, so a read loop that also handled requests
// (authentication, the store) kept an 8 KiB stack for the whole idle life
// of its connection. A read loop now only reads, and stays at the few KiB
// a read needs; a worker, whose stack is already grown, runs the request
// while the read loop waits for it, so a connection's requests are still
// handled one at a time in arrival order.
type workers struct {
	tasks   chan *task // unbuffered: a send succeeds only to an idle worker
	n       atomic.Int32
	stopped <-chan struct{}
}

// task is one request frame, or fn, to run on a worker.
type task struct {
	c      *conn
	ctx    context.Context
	binary bool
	data   []byte
	fn     func()
	done   chan struct{} // buffered: the worker never waits for the read loop
}

var tasks = sync.Pool{New: func() any { return &task{done: make(chan struct{}, 1)} }}

// do runs t on a worker and returns when it is done.
func (w *workers) do(t *task) {
	select {
	case w.tasks <- t:
	default:
		if w.n.Add(1) <= maxWorkers {
			go w.loop(t)
		} else {
			w.n.Add(-1)
			go t.run()
		}
	}
	<-t.done
}

func (w *workers) loop(t *task) {
	defer w.n.Add(-1)
	for {
		t.run()
		select {
		case t = <-w.tasks:
		case <-w.stopped:
			return
		}
	}
}

func (t *task) run() {
	if t.fn != nil {
		t.fn()
	} else {
		t.c.answer(t.ctx, t.binary, t.data)
	}
	t.done <- struct{}{}
}

// serveFrame answers one client frame on a worker and returns when the
// answer is queued.
func (c *conn) serveFrame(ctx context.Context, binary bool, data []byte) {
	t := tasks.Get().(*task)
	t.c, t.ctx, t.binary, t.data = c, ctx, binary, data
	c.srv.workers.do(t)
	*t = task{done: t.done}
	tasks.Put(t)
}

// onWorker runs fn on a worker and returns when it is done.
func (c *conn) onWorker(fn func()) {
	t := &task{fn: fn, done: make(chan struct{}, 1)}
	c.srv.workers.do(t)
}

// maxWriters bounds the long-lived writer goroutines.
const maxWriters = 128

// writers drain connections' outbound queues. A connection's writer runs
// only while frames are queued; starting a goroutine for it each time
// (and growing its stack to the socket write's depth) was a good part of
// a channel fan-out's CPU per delivery. An idle long-lived writer takes
// the connection instead; when none is idle, the connection gets a
// goroutine of its own as before, so a connection whose socket blocks
// never holds up another's frames.
type writers struct {
	conns   chan *conn // unbuffered: a send succeeds only to an idle writer
	n       atomic.Int32
	stopped <-chan struct{}
}

// start runs c.writeLoop on a writer. It never blocks.
func (w *writers) start(c *conn) {
	select {
	case w.conns <- c:
	default:
		if w.n.Add(1) <= maxWriters {
			go w.loop(c)
		} else {
			w.n.Add(-1)
			go c.writeLoop()
		}
	}
}

func (w *writers) loop(c *conn) {
	defer w.n.Add(-1)
	for {
		c.writeLoop()
		select {
		case c = <-w.conns:
		case <-w.stopped:
			return
		}
	}
}
