package main

import (
	"fmt"
	"sort"
	"strings"
)

// Fault modes: deliberate bugs, each breaking named guarantees (negative controls for the
// suite). Same names and meaning as reference_services/faults.py; switched on with
// OBSCONF_FAULTS=name,name. Which guarantees each breaks here is in negative_controls.yaml.
var knownFaults = map[string]string{
	"consumer-new-root":  "consumer ignores the incoming context: new root span",
	"wrong-consume-kind": "consume span has kind INTERNAL instead of CONSUMER",
	"no-messaging-attrs": "NATS spans lack messaging.system/destination.name",
	"log-no-trace-id":    "log lines carry empty trace_id and span_id",
	"plain-text-logs":    "the per-request access line is plain text, not JSON",
	"drop-logs":          "every 3rd log line is counted but not written",
	"no-service-name":    "the tracer resource has no service.name",
}

// Faults is the set of fault modes switched on in this process.
type Faults map[string]bool

func parseFaults(value string) (Faults, error) {
	faults := Faults{}
	var unknown []string
	for _, part := range strings.Split(value, ",") {
		name := strings.TrimSpace(part)
		if name == "" {
			continue
		}
		if _, ok := knownFaults[name]; !ok {
			unknown = append(unknown, name)
		}
		faults[name] = true
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("unknown fault(s) %s in OBSCONF_FAULTS; valid: %s",
			strings.Join(unknown, ", "), strings.Join(faults.valid(), ", "))
	}
	return faults, nil
}

func (Faults) valid() []string {
	names := make([]string, 0, len(knownFaults))
	for name := range knownFaults {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// On reports whether fault `name` is switched on; a name that is no fault panics (a typo
// must not read as "off").
func (f Faults) On(name string) bool {
	if _, ok := knownFaults[name]; !ok {
		panic("no such fault: " + name)
	}
	return f[name]
}

func (f Faults) list() []string {
	names := []string{}
	for name := range f {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}
