package stream

import "time"

// openers runs admissions (Handler.open) on goroutines that outlive one
// connect. A goroutine starts with the runtime's smallest stack, and the
// admission's deep call paths (the JWT's JSON and base64, go-redis, the
// first events) grow it by copying, several times per connect; a goroutine
// kept for the next admission has its stack grown already. One that waited
// openerIdle for work ends, so a quiet process keeps none.
type openers struct {
	work chan func() // unbuffered: a send succeeds when an opener waits
}

// openerIdle is how long an opener waits for the next admission.
const openerIdle = 10 * time.Second

func newOpeners() *openers { return &openers{work: make(chan func())} }

// run runs f on a waiting opener, or on a new one when none waits.
func (o *openers) run(f func()) {
	select {
	case o.work <- f:
	default:
		go o.serve(f)
	}
}

func (o *openers) serve(f func()) {
	idle := time.NewTimer(openerIdle)
	defer idle.Stop()
	for {
		f()
		idle.Reset(openerIdle)
		select {
		case f = <-o.work:
		case <-idle.C:
			return
		}
	}
}
