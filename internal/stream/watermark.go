package stream

import "time"

// StampSkew is how far ahead of the service's clock a publisher's alert
// timestamp is believed. The alerts stream's resume watermark is ordered
// by publisher timestamps (replay has nothing else to place history
// entries by), so a stamp is bounded by the time this process received it
// plus StampSkew before it may move the watermark: one alert stamped 2099,
// or a device clock that runs fast, can push it at most StampSkew ahead,
// never stop replay for good. A history entry stamped further ahead than
// that at replay time cannot be placed and is not replayed (it was
// delivered live).
const StampSkew = 5 * time.Second

// believed is the part of a publisher's stamp the watermark may use: at
// most StampSkew after at, a time of this service's clock.
func believed(stamp, at time.Time) time.Time {
	if limit := at.Add(StampSkew); stamp.After(limit) {
		return limit
	}
	return stamp
}
