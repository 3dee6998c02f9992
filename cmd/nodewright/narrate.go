package main

import (
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// narrator writes the demo's narration. On a terminal one progress line is rewritten in
// place while the demo waits; elsewhere (CI logs, a transcript) each new status gets a line
// of its own. Lines may come from the demo and from the scheduler's goroutines at once.
type narrator struct {
	mu  sync.Mutex
	out io.Writer
	tty bool
	// progressShown says a progress line is on the terminal, to be cleared before the next line.
	progressShown bool
	// lastStatus is the last progress status written as a plain line.
	lastStatus string
}

func newNarrator(out io.Writer) *narrator {
	return &narrator{out: out, tty: isTerminal(out)}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// printf writes a line (or lines) of narration.
func (n *narrator) printf(format string, args ...any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.clearProgress()
	fmt.Fprintf(n.out, format, args...)
}

// progress shows that the demo is waiting for what, with its status and elapsed time: in
// place on a terminal, else as a new line whenever the status changes.
func (n *narrator) progress(what, status string, elapsed time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	line := fmt.Sprintf("    waiting for %s (%s) %s", what, status, elapsed.Round(time.Second))
	if n.tty {
		fmt.Fprintf(n.out, "\r\033[K%s", line)
		n.progressShown = true
		return
	}
	if key := what + "/" + status; key != n.lastStatus {
		fmt.Fprintln(n.out, line)
		n.lastStatus = key
	}
}

// endProgress ends the current wait's progress line.
func (n *narrator) endProgress() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.clearProgress()
	n.lastStatus = ""
}

func (n *narrator) clearProgress() {
	if n.progressShown {
		fmt.Fprint(n.out, "\r\033[K")
		n.progressShown = false
	}
}

// narratedLines are the prefixes of the controller's operator-facing log messages (see
// DESIGN.md) that the demo shows as they are logged and checks for.
var narratedLines = []string{
	msgComputedPacking, msgLaunched, msgAddedTTL, msgTriggeringTermination, msgCordoned, msgDeleted,
}

const (
	msgComputedPacking       = "Computed packing of"
	msgLaunched              = "Launched instance:"
	msgAddedTTL              = "Added TTL to empty node"
	msgTriggeringTermination = "Triggering termination after"
	msgCordoned              = "Cordoned node"
	msgDeleted               = "Deleted node"
)

// klogLine matches klog's text format: severity, date, time, thread, file:line, message.
var klogLine = regexp.MustCompile(`^([IWEF])\d{4} (\d\d:\d\d:\d\d)\.\d+\s+\d+ [^\]]+\] (.*)$`)

// errorsKept is how many of the controller's last error lines the demo keeps, to show when a
// step fails.
const errorsKept = 5

// maxTypesShown bounds the instance type options shown of a "Computed packing" line; the
// controller log has them all.
const maxTypesShown = 6

// controllerLines watches the scheduler's log for the narrated lines: it shows each as it
// is logged and remembers which were seen, in order, for the demo's checks.
type controllerLines struct {
	narrator *narrator
	mu       sync.Mutex
	seq      int
	seen     map[string][]int // prefix -> sequence numbers of its lines
	errors   []string         // the last errorsKept error lines
}

func newControllerLines(n *narrator) *controllerLines {
	return &controllerLines{narrator: n, seen: map[string][]int{}}
}

// onLine is given each line the scheduler logs.
func (c *controllerLines) onLine(line string) {
	m := klogLine.FindStringSubmatch(line)
	if m == nil {
		return
	}
	severity, clock, rest := m[1], m[2], m[3]
	if severity == "E" || severity == "F" {
		c.mu.Lock()
		c.errors = append(c.errors, clock+" "+rest)
		if len(c.errors) > errorsKept {
			c.errors = c.errors[1:]
		}
		c.mu.Unlock()
	}
	msg, kvs := splitMessage(rest)
	for _, prefix := range narratedLines {
		if !strings.HasPrefix(msg, prefix) {
			continue
		}
		c.mu.Lock()
		c.seq++
		c.seen[prefix] = append(c.seen[prefix], c.seq)
		c.mu.Unlock()
		if prefix == msgComputedPacking {
			msg = shortenTypes(msg)
		}
		if kvs != "" {
			msg += " " + kvs
		}
		c.narrator.printf("    [nodewright-scheduler %s] %s\n", clock, msg)
		return
	}
}

// lastErrors returns the last error lines the controller logged, oldest first.
func (c *controllerLines) lastErrors() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.errors...)
}

// mark returns a point in the log; seenSince reports lines logged after it.
func (c *controllerLines) mark() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seq
}

// seenSince reports whether a line starting with prefix was logged after mark.
func (c *controllerLines) seenSince(prefix string, mark int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.seen[prefix] {
		if s > mark {
			return true
		}
	}
	return false
}

// missingSince returns those of prefixes not logged after mark.
func (c *controllerLines) missingSince(mark int, prefixes ...string) []string {
	var missing []string
	for _, p := range prefixes {
		if !c.seenSince(p, mark) {
			missing = append(missing, strconv.Quote(p))
		}
	}
	return missing
}

// splitMessage splits the rest of a klog line into its (unquoted) message and its
// key/value pairs.
func splitMessage(rest string) (string, string) {
	if !strings.HasPrefix(rest, `"`) {
		return rest, ""
	}
	prefix, err := strconv.QuotedPrefix(rest)
	if err != nil {
		return rest, ""
	}
	msg, err := strconv.Unquote(prefix)
	if err != nil {
		return rest, ""
	}
	return msg, strings.TrimSpace(rest[len(prefix):])
}

// shortenTypes cuts the bracketed instance type list of a "Computed packing" message to
// maxTypesShown names.
func shortenTypes(msg string) string {
	open, end := strings.IndexByte(msg, '['), strings.LastIndexByte(msg, ']')
	if open < 0 || end < open {
		return msg
	}
	types := strings.Fields(msg[open+1 : end])
	if len(types) <= maxTypesShown {
		return msg
	}
	return fmt.Sprintf("%s[%s ... and %d more]%s", msg[:open], strings.Join(types[:maxTypesShown], " "), len(types)-maxTypesShown, msg[end+1:])
}
