package pubsub

// Done is closed when the subscription ends (End says why): tests wait on
// it; a stream waits on Ready and looks at End.
func (s *Subscription) Done() <-chan struct{} { return s.done }
