package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of the CPU times in /proc/PID/stat. It is
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// procStat is what the harness reads about a server process.
type procStat struct {
	cpuSeconds float64 // user + system time so far
	peakRSS    int64   // VmHWM, bytes: peak resident set since start or the last reset
}

// readProc reads the CPU time (fields 14 and 15 of /proc/PID/stat) and
// the peak resident set (VmHWM of /proc/PID/status) of a process.
func readProc(pid int) (procStat, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// count fields after the last ')'.
	i := strings.LastIndexByte(string(stat), ')')
	if i < 0 {
		return procStat{}, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return procStat{}, errors.New("short /proc stat")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return procStat{}, errors.New("malformed /proc stat times")
	}
	ps := procStat{cpuSeconds: float64(utime+stime) / clockTicks}
	status, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procStat{}, err
	}
	defer status.Close()
	sc := bufio.NewScanner(status)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return procStat{}, fmt.Errorf("VmHWM: %w", err)
			}
			ps.peakRSS = kb << 10
		}
	}
	return ps, sc.Err()
}

// resetPeakRSS makes VmHWM start again from the current resident set
// (writing 5 to clear_refs; needs the same user or root). It reports
// whether that worked.
func resetPeakRSS(pid int) bool {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0) == nil
}
