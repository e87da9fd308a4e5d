package daemon

import (
	"context"
	"log/slog"
	"strings"
	"time"
)

// catchUpLimit bounds the wait for the backlog before the first scheduled
// report: a source that makes no progress must not hold reports back for
// ever.
const catchUpLimit = 10 * time.Minute

// waitCaughtUp returns once what the sources' live files held when it was
// called is committed, or after catchUpLimit with a warning naming the
// sources still behind, or when ctx ends. A report written before would
// judge a store that has not read the logs yet ("Clients examined: 0").
func (d *Daemon) waitCaughtUp(ctx context.Context, log *slog.Logger) {
	marks := d.lag.Marks()
	limit := time.NewTimer(catchUpLimit)
	defer limit.Stop()
	for {
		pending := d.lag.Pending(marks)
		if len(pending) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-d.lag.Wake():
		case <-limit.C:
			log.Warn("the first scheduled report is written before these sources caught up with their backlog",
				"sources", strings.Join(pending, ","))
			return
		}
	}
}
