package scan

import "time"

// NotifyPush tells this process's push poller (Run) that the registry
// committed a manifest, so that it reads the registry outbox now instead
// of at its next tick (RunOptions.PushPoll). Notifications that arrive
// while one is pending are merged into it; it never blocks. Pushes to
// other replicas are still found by the poll.
func (s *Service) NotifyPush() {
	select {
	case s.queue.pushed <- struct{}{}:
	default:
	}
}

// pushCoalesce is the shortest time between two outbox reads woken by
// NotifyPush during a burst of pushes (a single push is read at once).
const pushCoalesce = 100 * time.Millisecond
