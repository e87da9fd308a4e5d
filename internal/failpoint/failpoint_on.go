//go:build failpoints

package failpoint

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// points is read once from the environment: the points to kill at, and
// how often each was reached. A build for tests only has it.
var points struct {
	once sync.Once
	mu   sync.Mutex
	at   map[string]int
	hits map[string]int
}

// Hit counts a visit of the point name and kills the process with SIGKILL
// on the visit SCOPEWATCH_FAILPOINTS names.
func Hit(name string) {
	points.once.Do(parse)
	points.mu.Lock()
	defer points.mu.Unlock()
	n, ok := points.at[name]
	if !ok {
		return
	}
	points.hits[name]++
	if points.hits[name] == n {
		fmt.Fprintf(os.Stderr, "failpoint %s=%d: killing the process\n", name, n)
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}

func parse() {
	points.at, points.hits = map[string]int{}, map[string]int{}
	for _, kv := range strings.Split(os.Getenv("SCOPEWATCH_FAILPOINTS"), ",") {
		name, count, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			continue
		}
		if n, err := strconv.Atoi(count); err == nil && n > 0 {
			points.at[name] = n
		}
	}
}
