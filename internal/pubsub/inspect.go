package pubsub

// QueueStats are one stream's queue counters: messages refused after an
// overflow, realtime updates replaced by a newer one.
type QueueStats struct {
	Dropped   int `json:"dropped"`
	Coalesced int `json:"coalesced"`
}

// StreamStats returns the queue counters of every addressable stream in
// this process, by stream id (the lease id), read from the queues
// themselves: the local debug panel shows them next to /sse/status.
func (h *Hub) StreamStats() map[string]QueueStats {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make(map[string]QueueStats, len(h.subs))
	for _, s := range h.subs {
		if s.stream != "" && s.key == s.stream {
			out[s.stream] = s.queue.Stats()
		}
	}
	return out
}
