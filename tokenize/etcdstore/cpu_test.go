package etcdstore_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cpuTimes is CPU time (user + system) used so far by this process and by
// its child processes that are still running (etcdtest's members).
type cpuTimes struct{ self, members time.Duration }

func (c cpuTimes) since(before cpuTimes) cpuTimes {
	return cpuTimes{c.self - before.self, c.members - before.members}
}

// clockTick is the unit of /proc/<pid>/stat's times: USER_HZ, 100 on
// Linux.
const clockTick = 10 * time.Millisecond

// readCPU reads the times from getrusage and /proc (Linux; proc(5)).
func readCPU(tb testing.TB) cpuTimes {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	out := cpuTimes{self: time.Duration(ru.Utime.Nano() + ru.Stime.Nano())}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	me := strconv.Itoa(os.Getpid())
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue // ended meanwhile
		}
		// Fields after the command name, which is in parentheses and
		// may hold spaces: state, ppid, ..., utime (14th of the line),
		// stime (15th).
		i := strings.LastIndexByte(string(b), ')')
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 13 || f[1] != me {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		out.members += time.Duration(ut+st) * clockTick
	}
	return out
}
